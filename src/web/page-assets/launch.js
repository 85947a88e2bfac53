// The launch page (src/web/launch-page.ts): follows /build/… and opens the session when ready.
// The helpers come first and touch no page, so test/unit/launch-page.test.ts runs them alone.
'use strict';
/* global document, window, URL, setInterval, clearInterval */

/** Orders two Redis stream ids (`<ms>-<seq>`), the event ids of build log lines. */
function compareIds(a, b) {
  const [aMs, aSeq] = a.split('-').map(Number);
  const [bMs, bSeq] = b.split('-').map(Number);
  return aMs - bMs || aSeq - bSeq;
}

const ANSI_COLOURS = ['black', 'red', 'green', 'yellow', 'blue', 'magenta', 'cyan', 'white'];

/**
 * `text` cut into runs of one style: SGR colour and bold codes become class names (ansi-red,
 * ansi-bold…); every other terminal escape (cursor moves, hyperlinks, erase) is dropped.
 */
function ansiSegments(text) {
  const segments = [];
  let classes = [];
  // CSI sequences (ESC [ … final byte), OSC sequences (ESC ] … BEL or ESC \), other ESC pairs.
  const escape =
    // eslint-disable-next-line no-control-regex -- terminal escapes are what this removes
    /\x1b\[([0-9;?]*)([@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-_]|[\x00-\x08\x0b-\x1f\x7f]/g;
  let at = 0;
  for (const match of text.matchAll(escape)) {
    if (match.index > at) segments.push({ text: text.slice(at, match.index), classes });
    at = match.index + match[0].length;
    if (match[2] !== 'm') continue;
    classes = classes.slice();
    for (const code of (match[1] || '0').split(';').map(Number)) {
      if (code === 0) classes = [];
      else if (code === 1) classes.push('ansi-bold');
      else if (code === 39 || code === 22)
        classes = classes.filter((name) =>
          code === 22 ? name !== 'ansi-bold' : name === 'ansi-bold',
        );
      else if (code >= 30 && code <= 37) classes.push(`ansi-${ANSI_COLOURS[code - 30]}`);
      else if (code >= 90 && code <= 97) classes.push(`ansi-bright-${ANSI_COLOURS[code - 90]}`);
    }
  }
  if (at < text.length) segments.push({ text: text.slice(at), classes });
  return segments;
}

/** `text` without terminal escapes. */
const stripAnsi = (text) =>
  ansiSegments(text)
    .map((segment) => segment.text)
    .join('');

// BinderHub's LaunchSpec.getJupyterServerRedirectUrl: urlpath resolved against the server's
// URL, then the token appended, so a urlpath's own query and fragment are kept. Unlike
// BinderHub, a urlpath that resolves outside the session (../, another host, javascript:)
// opens the session's default page instead: the token must not leave /user/<session>/.
function sessionUrl(serverUrl, urlpath, token, pageUrl) {
  const server = new URL(serverUrl, pageUrl);
  let target = new URL(urlpath, server);
  if (target.origin !== server.origin || !target.pathname.startsWith(server.pathname)) {
    target = new URL(server.href);
  }
  target.searchParams.append('token', token);
  return target;
}

/** `3 s`, `1 min 5 s`: the time since the page opened. */
function formatElapsed(ms) {
  const seconds = Math.floor(ms / 1000);
  return seconds < 60 ? `${seconds} s` : `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
}

const PHASES = ['waiting', 'fetching', 'building', 'pushing', 'built', 'launching', 'ready'];
const SAYS = {
  waiting: 'Waiting for a build worker to start…',
  fetching: 'Fetching the repository…',
  building: 'Building the environment; the log below shows each step.',
  pushing: 'Storing the image…',
  built: 'The environment is built; starting your session…',
  launching: 'Starting your session…',
  ready: 'Ready: opening your session…',
};
const STEP = {
  connecting: 'while asking for the repository',
  waiting: 'before the build started',
  fetching: 'while fetching the repository',
  building: 'while building',
  pushing: 'while storing the image',
  built: 'while starting the session',
  launching: 'while starting the session',
};
/** Lines of output shown with a failure, before the link to the whole log. */
const TAIL_LINES = 10;

function startLaunchPage(document, window) {
  const $ = (id) => document.getElementById(id);
  const root = $('launch');
  const buildUrl = root.dataset.buildUrl;
  const urlpath = root.dataset.urlpath || '';
  const phase = $('phase');
  const message = $('message');
  const log = $('log');
  const steps = [...$('steps').children];
  const followNote = $('follow-note');

  let source;
  let startedAt;
  let timer;
  let lastPhase;
  let imageName;
  let previousId;
  let highestId;
  let finished;
  let following = true;
  let tail;

  const tick = () => ($('elapsed').textContent = formatElapsed(Date.now() - startedAt));
  const setIcon = (state) => ($('favicon').href = `/static/favicon-${state}.svg`);

  function showPhase(name) {
    phase.textContent = name;
    phase.className = `phase ${name}`;
    const at = PHASES.indexOf(name === 'failed' ? lastPhase : name);
    steps.forEach((step, i) => {
      step.className =
        i < at || name === 'ready'
          ? 'done'
          : i === at
            ? name === 'failed'
              ? 'failed'
              : 'current'
            : '';
    });
  }

  function appendLog(text) {
    const line = text.endsWith('\n') ? text : `${text}\n`;
    const fragment = document.createDocumentFragment();
    for (const segment of ansiSegments(line)) {
      const span = document.createElement('span');
      span.textContent = segment.text;
      if (segment.classes.length > 0) span.className = segment.classes.join(' ');
      fragment.append(span);
    }
    log.append(fragment);
    tail.push(stripAnsi(line));
    if (tail.length > TAIL_LINES) tail.shift();
    if (following) log.scrollTop = log.scrollHeight;
  }

  // Auto-scroll stops while the reader looks further up, and resumes at the bottom.
  log.addEventListener('scroll', () => {
    following = log.scrollHeight - log.scrollTop - log.clientHeight < 30;
    followNote.hidden = following || finished;
  });
  $('follow').addEventListener('click', () => {
    following = true;
    followNote.hidden = true;
    log.scrollTop = log.scrollHeight;
  });

  function fail(text, output, signInUrl) {
    finished = true;
    source.close();
    clearInterval(timer);
    tick();
    showPhase('failed');
    setIcon('failed');
    message.textContent = 'The launch failed.';
    $('failed-step').textContent = STEP[lastPhase] || '';
    $('failure-message').textContent =
      stripAnsi(text) + (output ? `\nThe last lines before it:\n${output}` : '');
    const link = $('full-log');
    link.hidden = !imageName;
    if (imageName) link.href = `/logs/${encodeURIComponent(imageName)}`;
    // A repository that may be private, and this visitor's to launch once signed in.
    const signIn = $('sign-in');
    signIn.hidden = !signInUrl;
    if (signInUrl) signIn.href = signInUrl;
    $('failure').hidden = false;
  }

  function onEvent(event) {
    // A reconnected stream goes on after the id it was sent last (Last-Event-ID); an event with
    // an id already shown is skipped all the same, so no line ever shows twice. An event with
    // no id of its own keeps the previous one: it is new when its id has not changed.
    const id = event.lastEventId;
    const fresh = id !== previousId;
    previousId = id;
    if (fresh && id && highestId && compareIds(id, highestId) <= 0) return;
    if (fresh && id) highestId = id;
    let data;
    try {
      data = JSON.parse(event.data);
    } catch {
      return;
    }
    if (data.imageName && !imageName) {
      imageName = data.imageName;
      $('log-page').href = `/logs/${encodeURIComponent(imageName)}`;
      $('log-page').hidden = false;
    }
    const before = tail.join('');
    if (data.message && data.phase !== 'ready') appendLog(data.message);
    if (data.phase === 'failed') {
      return fail(data.message || 'The server gave no reason.', before, data.sign_in_url);
    }
    if (!PHASES.includes(data.phase)) return;
    lastPhase = data.phase;
    showPhase(data.phase);
    message.textContent = SAYS[data.phase];
    if (data.phase === 'ready' && data.url) {
      finished = true;
      source.close();
      clearInterval(timer);
      setIcon('ready');
      const target = sessionUrl(data.url, urlpath, data.token, window.location.href);
      message.textContent = `Ready: opening ${target.origin}${target.pathname}`;
      window.location.href = target.href;
    }
  }

  function connect(url) {
    startedAt = Date.now();
    lastPhase = 'connecting';
    imageName = undefined;
    $('log-page').hidden = true;
    previousId = '';
    highestId = '';
    finished = false;
    tail = [];
    log.textContent = '';
    $('failure').hidden = true;
    setIcon('building');
    clearInterval(timer);
    timer = setInterval(tick, 1000);
    tick();
    source = new window.EventSource(url);
    source.onmessage = onEvent;
    source.onerror = () => {
      if (finished) return;
      // CLOSED: the server refused the stream (not a dropped connection, which reconnects).
      if (source.readyState === 2) fail('The server did not answer the launch request.', '');
      else message.textContent = 'Lost the connection to the server; reconnecting…';
    };
  }

  $('retry').addEventListener('click', () => {
    showPhase('waiting');
    message.textContent = 'Building again…';
    connect(`${buildUrl}${buildUrl.includes('?') ? '&' : '?'}rebuild=true`);
  });
  connect(buildUrl);
}

if (typeof document !== 'undefined') startLaunchPage(document, window);
