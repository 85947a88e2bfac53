import { createLog, type Logger, type LogLevel } from '../../src/log/create-log.js';

/** A log entry as written in JSON: pino's fields and the line's own. */
export type LogEntry = Record<string, unknown> & { level: number; msg: string };

/** A JSON logger writing to memory, for tests that assert what was logged. */
export function captureLog(level: LogLevel = 'debug'): {
  log: Logger;
  entries(): LogEntry[];
  /** Every line as written, for asserting that something appears nowhere. */
  text(): string;
} {
  const lines: string[] = [];
  const log = createLog({
    level,
    format: 'json',
    destination: { write: (line) => lines.push(line) },
  });
  return {
    log,
    entries: () => lines.map((line) => JSON.parse(line) as LogEntry),
    text: () => lines.join(''),
  };
}

/** A logger that writes nothing, for tests that do not look at the log. */
export const quietLog: Logger = createLog({ level: 'silent' });
