import type { Logger } from 'probot';

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;
export type LogLevel = (typeof LEVELS)[number];

/** The longest line the app logs; webhook errors otherwise carry the whole payload. */
const MAX_LINE = 300;

/** One short line for what Probot passes a log method: a message, an error, or `{ err }`. */
function describe(first: unknown, rest: unknown[]): string {
  const text = rest.find((item): item is string => typeof item === 'string');
  const error =
    first instanceof Error
      ? first
      : (first as { err?: unknown } | undefined)?.err instanceof Error
        ? (first as { err: Error }).err
        : undefined;
  const errors = error instanceof AggregateError ? error.errors : error ? [error] : [];
  const parts = [
    typeof first === 'string' ? first : text,
    ...errors.map((e: Error) => e.message.split('\n')[0]),
  ].filter(Boolean);
  const line = [...new Set(parts)].join(': ');
  return line.length > MAX_LINE ? `${line.slice(0, MAX_LINE)}…` : line;
}

/**
 * A logger in the shape Probot expects (pino's) that writes one short line per entry through
 * `write`. Probot logs a webhook whose signature does not match with its whole payload at
 * error level (DESIGN §4.3); here that becomes one line naming the problem.
 */
export function createProbotLog(write: (line: string) => void, level: LogLevel): Logger {
  const threshold = LEVELS.indexOf(level);
  const at =
    (name: LogLevel) =>
    (first?: unknown, ...rest: unknown[]) => {
      if (LEVELS.indexOf(name) >= threshold) write(`github app ${name}: ${describe(first, rest)}`);
    };
  const log = {
    level,
    trace: at('trace'),
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    fatal: at('fatal'),
    silent: () => undefined,
    child: () => log,
    isLevelEnabled: (name: LogLevel) => LEVELS.indexOf(name) >= threshold,
  };
  // Probot calls only the methods above; a full pino Logger type has dozens more members.
  return log as unknown as Logger;
}
