import { formatDuration } from '../format-duration.js';
import type { BuildEvent } from '../build-event.js';

/** GitHub refuses a check run whose `output.text` or `output.summary` is longer than this. */
export const GITHUB_OUTPUT_LIMIT = 65_535;
/** Room left in `output.text` for the fence and the note about cut lines. */
const TAIL_LIMIT = GITHUB_OUTPUT_LIMIT - 500;

export interface CheckRunOutput {
  title: string;
  summary: string;
  text?: string;
}

export interface FinishedBuild {
  imageName: string;
  /** The whole stored log, final event last. */
  events: readonly BuildEvent[];
  /** Milliseconds from the worker starting the build to its end, when known. */
  durationMs?: number;
  /** Where the image launches (public repositories). */
  launchUrl?: string;
  /** Where the whole log is (public repositories). */
  logUrl?: string;
}

/** A build that found its image already there did not fetch anything. */
export const wasCached = (events: readonly BuildEvent[]) =>
  !events.some((event) => event.phase === 'fetching' || event.phase === 'building');

/**
 * The last lines of the log that fit in a check run's text, in a code fence longer than any
 * run of backticks in the log itself, so that no log line can end the fence early.
 */
export function logTail(events: readonly BuildEvent[], limit = TAIL_LIMIT): string {
  let text = events.map((event) => event.message.replace(/\n?$/, '\n')).join('');
  let note = '';
  if (text.length > limit) {
    const cut = text.indexOf('\n', text.length - limit);
    text = text.slice(cut + 1);
    note = `The log's earlier lines are cut: GitHub keeps ${GITHUB_OUTPUT_LIMIT.toLocaleString('en')} characters.\n\n`;
  }
  const longestRun = Math.max(2, ...(text.match(/`+/g) ?? []).map((run) => run.length));
  const fence = '`'.repeat(longestRun + 1);
  return `${note}${fence}text\n${text}${fence}\n`;
}

/** The check run's output for a finished build: what happened, how long it took, the image. */
export function finishedOutput(build: FinishedBuild): CheckRunOutput {
  const final = build.events.at(-1);
  const took = build.durationMs === undefined ? '' : ` in ${formatDuration(build.durationMs)}`;
  const links = [
    build.launchUrl && `[Launch it](${build.launchUrl})`,
    build.logUrl && `[the whole log](${build.logUrl})`,
  ].filter(Boolean);
  const more = links.length > 0 ? `\n\n${links.join(' · ')}` : '';
  if (final?.phase === 'built') {
    const cached = wasCached(build.events);
    return {
      title: cached ? 'Image already built' : `Built${took}`,
      summary:
        (cached
          ? `The image \`${build.imageName}\` was already built for this commit (cached), so it launches at once.`
          : `Built the image \`${build.imageName}\`${took}.`) + more,
      text: logTail(build.events),
    };
  }
  const reason = final?.phase === 'failed' ? final.message.trim() : 'The build did not finish.';
  return {
    title: 'Build failed',
    summary: `The image \`${build.imageName}\` could not be built${took}: ${reason}${more}`.slice(
      0,
      GITHUB_OUTPUT_LIMIT,
    ),
    text: logTail(build.events),
  };
}
