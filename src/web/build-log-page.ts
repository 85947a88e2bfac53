import { stripVTControlCharacters } from 'node:util';
import { formatDuration } from '../format-duration.js';
import type { BuildEvent } from '../build-event.js';
import { isFinalEvent } from '../queue/build-log.js';
import { binderLinks } from '../repos/binder-links.js';
import { html } from './html.js';
import { renderPage } from './page-layout.js';
import type { BuildDetails } from './web-deps.js';

/**
 * Docker image references as Bindery writes them (`<prefix><slug>:<tag>`), conservatively:
 * lowercase repository characters, one `:`, and a tag as Docker allows it; after a registry
 * host with a port (BINDERY_REGISTRY=registry.internal:5000) when there is one.
 */
const IMAGE_NAME = /^([a-z0-9.-]{1,253}:\d{1,5}\/)?[a-z0-9._/-]{1,255}:[A-Za-z0-9_.-]{1,128}$/;

/** Whether `name` is an image name a build log may exist for. */
export const isImageName = (name: string): boolean => IMAGE_NAME.test(name);

/** Where a build stands, as its log says: `built` and `failed` are final. */
export type BuildState = 'waiting' | 'building' | 'built' | 'failed';

/** The state of the build whose log is `events` (oldest first, not empty). */
export function buildStateOf(events: readonly BuildEvent[]): BuildState {
  const last = events.at(-1);
  if (!last || last.phase === 'waiting') return 'waiting';
  if (isFinalEvent(last)) return last.phase as 'built' | 'failed';
  return 'building';
}

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

/**
 * The page behind `/logs/<image name>`, where a GitHub check run's "details" link goes: the
 * build's state, its times, and its whole stored log, then (log.js) the lines of a running
 * build as they come, from after `lastId`, the id of the last entry shown. `details` is what
 * the build queue knows (epoch milliseconds); `now` dates a running build.
 */
export function renderBuildLogPage(options: {
  imageName: string;
  events: readonly BuildEvent[];
  /** The stream id of the last of `events`; the live part of the page goes on after it. */
  lastId?: string;
  details?: BuildDetails;
  now: number;
}): string {
  const { imageName, events, details, now, lastId = '0-0' } = options;
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
    // Docker's output colours its lines; a <pre> would show the escape codes as text.
    .map(({ message }) =>
      stripVTControlCharacters(message.endsWith('\n') ? message : `${message}\n`),
    )
    .join('');
  // The launch page of the commit this image is built from (none for `bindery build` of a directory).
  const launchPath =
    details?.spec && details.ref && details.spec.provider !== 'local'
      ? `/${binderLinks(details.spec, details.ref, '').persistentRequest}`
      : undefined;
  const body = html`<main
    id="build-log"
    data-stream="/logs/${encodeURIComponent(imageName)}"
    data-after="${lastId}"
    data-final="${String(final)}"
  >
    <h1>Build log</h1>
    <div class="image">${imageName}</div>
    ${launchPath ? html`<p><a id="launch-link" href="${launchPath}">Open the launch page of ${details!.spec!.repoLabel} at this commit</a></p>` : ''}
    <span id="state" class="state ${state}">${state}</span>
    <p id="summary" class="message">${SUMMARY[state]}</p>
    ${final ? '' : html`<p id="live-note" class="hint">This page follows the build as it runs.</p>`}
    ${
      times.length > 0
        ? html`<dl>
            ${times.map(
              ([term, value]) =>
                html`<dt>${term}</dt>
                  <dd>${value}</dd>`,
            )}
          </dl>`
        : ''
    }
    <pre id="log">${log}</pre>
  </main>`;
  return renderPage({
    title: `Bindery: ${state}, ${imageName}`,
    body,
    scripts: final ? [] : ['log.js'],
    icon: state === 'built' ? 'ready' : state === 'failed' ? 'failed' : 'building',
    noindex: true,
  });
}

/** A page that only says `sentence`: no log, a private one, or a malformed address. */
export function renderBuildLogNotice(title: string, sentence: string): string {
  return renderPage({
    title: `Bindery: ${title}`,
    body: html`<main>
      <h1>${title}</h1>
      <p class="message">${sentence}</p>
    </main>`,
    noindex: true,
  });
}
