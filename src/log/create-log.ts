import { createRequire } from 'node:module';
import { pino, type DestinationStream, type Logger } from 'pino';
import type { PrettyOptions } from 'pino-pretty';
import { errorFields } from './error-fields.js';

export type { Logger } from 'pino';

/** LOG_LEVEL's values: pino's levels, as Probot reads them. */
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
/** LOG_FORMAT's values: `json` (one object a line, for machines), `pretty` (for people). */
export type LogFormat = 'json' | 'pretty';

export interface LogOptions {
  /** The least severe level written. @defaultValue info */
  level?: LogLevel;
  /** @defaultValue pretty */
  format?: LogFormat;
  /**
   * Where lines go: anything with `write(line)`, e.g. a test's stream.
   * @defaultValue standard error, written synchronously
   */
  destination?: DestinationStream;
  /** Colours in pretty lines. @defaultValue whether the destination is standard error on a terminal */
  colorize?: boolean;
}

/**
 * Bindery's one logger (pino, as Probot's `getLog`): every component gets a child of it
 * (`log.child({ component: 'proxy' })`), Probot too. Lines go to standard error, written
 * synchronously so that a crash does not lose the last ones, and so that `bindery build`'s
 * standard output holds only the image name.
 */
export function createLog(options: LogOptions = {}): Logger {
  const { level = 'info', format = 'pretty' } = options;
  const destination = options.destination ?? pino.destination({ dest: 2, sync: true });
  const colorize = options.colorize ?? (!options.destination && process.stderr.isTTY === true);
  return pino(
    {
      level,
      timestamp: pino.stdTimeFunctions.isoTime,
      serializers: { err: errorFields },
    },
    format === 'json' ? destination : prettyStream(destination, colorize),
  );
}

/**
 * Pretty lines, made in this process and written at once, like Probot's own transform:
 * `2026-12-06 16:40:00.123 INFO (proxy): GET /user/x/lab 200 …`. pino-pretty is loaded only
 * here: it costs a start as much as pino itself.
 */
function prettyStream(destination: DestinationStream, colorize: boolean): DestinationStream {
  const { prettyFactory } = createRequire(import.meta.url)('pino-pretty') as {
    prettyFactory: (options: PrettyOptions) => (line: string) => string;
  };
  const pretty = prettyFactory({
    colorize,
    singleLine: true,
    translateTime: 'SYS:yyyy-mm-dd HH:MM:ss.l',
    ignore: 'pid,hostname,component',
    messageFormat: '{if component}({component}) {end}{msg}',
  });
  return { write: (line: string) => destination.write(pretty(line)) };
}

let fallback: Logger | undefined;

/**
 * The logger of code that was given none (a caller of one component, a test): pretty lines at
 * info on standard error. The service and the command line pass their own, made from LOG_LEVEL
 * and LOG_FORMAT.
 */
export function defaultLog(): Logger {
  fallback ??= createLog();
  return fallback;
}
