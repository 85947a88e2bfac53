import { BuildFailedError, RequestRefusedError, type StepFailure } from './errors.js';
import type { ActionInputs } from './read-inputs.js';
import type { BuildEvent } from './read-event-stream.js';

/**
 * The step failure a `failed` event means. With a `status_code` the server refused the request
 * (a 403 is about the token); without one the build itself failed, and its message says why.
 */
export function failureFromEvent(event: BuildEvent, inputs: ActionInputs): StepFailure {
  const message = String(event.message ?? 'no reason given').trim();
  const status = typeof event.status_code === 'number' ? event.status_code : undefined;
  if (status === undefined) {
    return new BuildFailedError(
      `The build of ${inputs.provider}/${inputs.repository} at ${inputs.ref} failed: ${message}`,
    );
  }
  return refusal(status, message, inputs);
}

/** The sentence for a refused request: what the server said, and what to change. */
export function refusal(status: number, message: string, inputs: ActionInputs): StepFailure {
  if (status === 401 || status === 403) {
    return new RequestRefusedError(
      inputs.token
        ? `The Bindery server refused the API token (${status}: ${message}). Check that the token ` +
            `input holds one of the server's BINDERY_API_TOKENS.`
        : `The Bindery server refused the request (${status}: ${message}). Set the token input ` +
            `to an API token of the server, or set launch: true.`,
      status,
    );
  }
  return new RequestRefusedError(
    `The Bindery server refused the request (${status}): ${message}`,
    status,
  );
}
