import { RequestRefusedError, ServerUnreachableError, StepFailure } from './errors.js';
import { readEventStream, type BuildEvent } from './read-event-stream.js';

export interface FollowBuildOptions {
  /** The `/build/<provider>/<spec>` URL, query included. */
  url: string;
  /** Extra request headers (the API token). */
  headers?: Record<string, string>;
  /** An event that ends the wait successfully (`failed` always ends it). */
  isFinal: (event: BuildEvent) => boolean;
  /** Sees each event once, in order, replays after a reconnect left out. */
  onEvent?: (event: BuildEvent) => void;
  /** Told when the stream dropped and the action reconnects. */
  onReconnect?: (reason: string) => void;
  /** Aborts the wait (the step's timeout); the error it throws is the abort's reason. */
  signal?: AbortSignal;
  /** @defaultValue globalThis.fetch */
  fetch?: typeof fetch;
}

/** How many times a dropped stream is reopened. */
const RECONNECTS = 1;

/** The code of a network error (`ECONNREFUSED`, …) inside fetch's "fetch failed". */
function networkReason(error: unknown): string {
  const cause = (error as { cause?: { code?: unknown; message?: unknown } }).cause;
  if (typeof cause?.code === 'string') return cause.code;
  if (typeof cause?.message === 'string') return cause.message;
  return error instanceof Error ? error.message : String(error);
}

/** Turns an HTTP error answer into a RequestRefusedError carrying the server's message. */
export async function refusalFrom(response: Response): Promise<never> {
  const text = await response.text().catch(() => '');
  let message = text.trim().slice(0, 500);
  try {
    const parsed = JSON.parse(text) as { message?: unknown };
    if (typeof parsed.message === 'string') message = parsed.message.trim();
  } catch {
    // Not JSON: a proxy's page; its text is the best we have.
  }
  throw new RequestRefusedError(message || response.statusText, response.status);
}

/**
 * Follows a build's event stream to its end and returns the final event. BinderHub's stream
 * ends with `ready` (or `built` when only building) or `failed`, which is returned for the
 * caller to word; HTTP error answers and an unreachable server are thrown. A stream that drops before its end is reopened once: the
 * service keys builds by image name, so the second request attaches to the same build and
 * replays its log from the start, and the replayed events are not passed on twice.
 */
export async function followBuild(options: FollowBuildOptions): Promise<BuildEvent> {
  const fetchImpl = options.fetch ?? globalThis.fetch;
  const signal = options.signal;
  const aborted = () => {
    if (signal?.aborted)
      throw signal.reason instanceof Error ? signal.reason : new StepFailure('Aborted.');
  };
  let previous: string[] = [];
  for (let attempt = 0; ; attempt++) {
    let response: Response;
    try {
      response = await fetchImpl(options.url, {
        headers: { accept: 'text/event-stream', ...options.headers },
        signal,
      });
    } catch (error) {
      aborted();
      throw new ServerUnreachableError(
        `Could not reach the Bindery server at ${new URL(options.url).origin} (${networkReason(error)}).`,
      );
    }
    if (!response.ok) return refusalFrom(response);
    if (!response.body) throw new StepFailure('The Bindery server answered without a body.');

    const current: string[] = [];
    let replaying = previous.length > 0;
    let dropped = 'the stream ended before the build did';
    try {
      for await (const event of readEventStream(response.body as AsyncIterable<Uint8Array>)) {
        const text = JSON.stringify(event);
        current.push(text);
        // A reconnect replays the build's log from its start: skip what was already seen.
        if (replaying && previous[current.length - 1] === text) continue;
        replaying = false;
        if (event.phase === 'failed') return event;
        options.onEvent?.(event);
        if (options.isFinal(event)) return event;
      }
    } catch (error) {
      aborted();
      dropped = networkReason(error);
    }
    if (attempt >= RECONNECTS) {
      throw new ServerUnreachableError(
        `The connection to the Bindery server dropped twice before the build ended (${dropped}).`,
      );
    }
    options.onReconnect?.(dropped);
    previous = current;
  }
}
