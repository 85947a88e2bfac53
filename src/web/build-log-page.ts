import { formatDuration } from '../format-duration.js';
import { isFinalEvent, type BuildLogEvent } from '../queue/build-log.js';
import { escapeHtml } from './escape-html.js';
import type { BuildDetails } from './web-deps.js';

/** Seconds between reloads of the page of a build that has not ended. */
export const REFRESH_SECONDS = 5;

/**
 * Docker image references as Bindery writes them (`<prefix><slug>:<tag>`), conservatively:
 * lowercase repository characters, one `:`, and a tag as Docker allows it.
 */
const IMAGE_NAME = /^[a-z0-9._/-]{1,255}:[A-Za-z0-9_.-]{1,128}$/;

/** Whether `name` is an image name a build log may exist for. */
export const isImageName = (name: string): boolean => IMAGE_NAME.test(name);

/** Where a build stands, as its log says: `built` and `failed` are final. */
export type BuildState = 'waiting' | 'building' | 'built' | 'failed';

/** The state of the build whose log is `events` (oldest first, not empty). */
export function buildStateOf(events: readonly BuildLogEvent[]): BuildState {
  const last = events.at(-1);
  if (!last || last.phase === 'waiting') return 'waiting';
  if (isFinalEvent(last)) return last.phase as 'built' | 'failed';
  return 'building';
}

/** Docker's output colours its lines; a <pre> would show the escape codes as text. */
const stripAnsi = (text: string) => text.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, ''); // eslint-disable-line no-control-regex
const timeOf = (ms: number) =>
  new Date(ms)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, ' UTC');

const SUMMARY: Record<BuildState, string> = {
  waiting: 'Waiting for a build worker to start this build.',
  building: 'Building.',
  built: 'The image is built. Launch it from the repository’s Binder link or badge.',
  failed: 'The build failed; the end of the log below says why.',
};

const STYLE = `
  body { font: 16px/1.5 system-ui, sans-serif; margin: 0; background: #f6f7f9; color: #1d2330; }
  main { max-width: 860px; margin: 3rem auto; padding: 0 1rem; }
  h1 { font-size: 1.4rem; margin: 0 0 .25rem; }
  .image { color: #566; word-break: break-all; margin-bottom: 1.5rem; font-family: ui-monospace, monospace; }
  .state { display: inline-block; padding: .2rem .7rem; border-radius: 1rem; background: #e4e9f2; font-weight: 600; }
  .state.failed { background: #fde2e1; color: #9b1c1c; }
  .state.built { background: #dcf5e4; color: #17663a; }
  .message { margin: 1rem 0; }
  .refresh { color: #566; font-size: .9rem; }
  dl { display: grid; grid-template-columns: max-content 1fr; gap: .1rem 1rem; margin: 1rem 0; }
  dt { color: #566; }
  dd { margin: 0; }
  pre { background: #10141c; color: #d6deeb; padding: 1rem; border-radius: .5rem; overflow: auto; font-size: 13px; white-space: pre-wrap; word-break: break-word; }`;

/** A whole page in the launch page's look; `head` and `body` are HTML, already escaped. */
const page = (title: string, body: string, head = '') => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">${head}
<title>${escapeHtml(title)}</title>
<style>${STYLE}
</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>
`;

/**
 * The page behind `/logs/<image name>`, where a GitHub check run's "details" link goes: the
 * build's state, its times, and its whole stored log. It reloads itself until the build ends.
 * `details` is what the build queue knows (epoch milliseconds); `now` dates a running build.
 */
export function renderBuildLogPage(options: {
  imageName: string;
  events: readonly BuildLogEvent[];
  details?: BuildDetails;
  now: number;
}): string {
  const { imageName, events, details, now } = options;
  const state = buildStateOf(events);
  const final = state === 'built' || state === 'failed';
  const { startedAt, finishedAt } = details ?? {};

  const times: [string, string][] = [];
  if (startedAt !== undefined) times.push(['Started', timeOf(startedAt)]);
  if (final && finishedAt !== undefined) times.push(['Finished', timeOf(finishedAt)]);
  // The final event carries the duration: the queue records the job's end only after the
  // worker has written that event, so a page loaded in between would have none.
  const durationMs =
    events.findLast(isFinalEvent)?.durationMs ??
    (startedAt !== undefined && finishedAt !== undefined ? finishedAt - startedAt : undefined);
  if (final && durationMs !== undefined) times.push(['Duration', formatDuration(durationMs)]);
  else if (startedAt !== undefined && !final)
    times.push(['Running for', formatDuration(now - startedAt)]);

  const log = events
    .map(({ message }) => stripAnsi(message.endsWith('\n') ? message : `${message}\n`))
    .join('');
  const body = `  <h1>Build log</h1>
  <div class="image">${escapeHtml(imageName)}</div>
  <span class="state ${state}">${state}</span>
  <p class="message">${escapeHtml(SUMMARY[state])}</p>
${final ? '' : `  <p class="refresh">This page refreshes every ${REFRESH_SECONDS} seconds until the build ends.</p>\n`}${
    times.length > 0
      ? `  <dl>${times.map(([term, value]) => `<dt>${term}</dt><dd>${escapeHtml(value)}</dd>`).join('')}</dl>\n`
      : ''
  }  <pre>${escapeHtml(log)}</pre>`;
  return page(
    `Bindery: ${state}, ${imageName}`,
    body,
    final ? '' : `\n<meta http-equiv="refresh" content="${REFRESH_SECONDS}">`,
  );
}

/** A page that only says `sentence`: no log, a private one, or a malformed address. */
export function renderBuildLogNotice(title: string, sentence: string): string {
  return page(
    `Bindery: ${title}`,
    `  <h1>${escapeHtml(title)}</h1>\n  <p class="message">${escapeHtml(sentence)}</p>`,
  );
}
