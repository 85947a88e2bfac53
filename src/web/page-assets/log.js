// The build log page (src/web/build-log-page.ts): adds the lines of a running build as they
// come, after the last one the server rendered, and shows its end.
'use strict';
/* global document, EventSource */

const root = document.getElementById('build-log');
const log = document.getElementById('log');
const SUMMARY = {
  built: 'The image is built. Launch it from the repository’s Binder link or badge.',
  failed: 'The build failed; the end of the log below says why.',
};
const strip = (text) =>
  // eslint-disable-next-line no-control-regex -- terminal escapes are what this removes
  text.replace(/\x1b\[[0-9;?]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-_]/g, '');

if (root.dataset.final !== 'true') {
  const source = new EventSource(
    `${root.dataset.stream}?after=${encodeURIComponent(root.dataset.after)}`,
  );
  source.onmessage = (event) => {
    const data = JSON.parse(event.data);
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 30;
    const text = strip(data.message || '');
    log.append(text.endsWith('\n') ? text : `${text}\n`);
    if (atBottom) log.scrollTop = log.scrollHeight;
    const state = document.getElementById('state');
    if (data.phase === 'built' || data.phase === 'failed') {
      source.close();
      state.textContent = data.phase;
      state.className = `state ${data.phase}`;
      document.getElementById('summary').textContent = SUMMARY[data.phase];
      document.getElementById('live-note')?.remove();
      // "Running for" was true when the page loaded; the build's times are on the next load.
      for (const term of document.querySelectorAll('dt')) {
        if (term.textContent === 'Running for') {
          term.nextElementSibling?.remove();
          term.remove();
        }
      }
      document.getElementById('favicon').href =
        `/static/favicon-${data.phase === 'built' ? 'ready' : 'failed'}.svg`;
    } else if (state.textContent === 'waiting' && data.phase !== 'waiting') {
      state.textContent = 'building';
      state.className = 'state building';
      document.getElementById('summary').textContent = 'Building.';
    }
  };
}
