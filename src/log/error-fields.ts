/** Failures that are expected and say all in their code: one line, no stack. */
const EXPECTED_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
]);

const LONGEST_MESSAGE = 1000;

/**
 * What a log line keeps of an error (`log.error({ err })`, or an error as the first argument):
 * its class, message, HTTP status and code, the messages of an AggregateError's errors, and a
 * stack only when the error is not an expected one (an HTTP status or a network code). Nothing
 * else: Probot's webhook errors carry the whole payload (`event`) and Octokit's the request,
 * neither of which belongs in a log line (DESIGN §4.3).
 */
export function errorFields(error: unknown): unknown {
  if (!(error instanceof Error)) return error;
  const { status, code } = error as { status?: unknown; code?: unknown };
  const message =
    error.message.length > LONGEST_MESSAGE
      ? `${error.message.slice(0, LONGEST_MESSAGE)}…`
      : error.message;
  const expected =
    typeof status === 'number' || (typeof code === 'string' && EXPECTED_CODES.has(code));
  return {
    type: error.name,
    message,
    ...(typeof status === 'number' && { status }),
    ...((typeof code === 'string' || typeof code === 'number') && { code }),
    ...(error instanceof AggregateError && {
      errors: error.errors.map((inner: unknown) =>
        inner instanceof Error ? inner.message.split('\n')[0] : String(inner),
      ),
    }),
    ...(!expected && error.stack && { stack: error.stack }),
  };
}
