/** Why the step failed; its message is the sentence the step prints as `::error::`. */
export class StepFailure extends Error {
  constructor(message: string) {
    super(message);
    this.name = this.constructor.name;
  }
}

/** The server could not be reached, or did not answer in time. */
export class ServerUnreachableError extends StepFailure {}

/** The server refused the request: an HTTP error status, or a `failed` event with a status code. */
export class RequestRefusedError extends StepFailure {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/** The build ran and failed, e.g. a postBuild script exited non-zero. */
export class BuildFailedError extends StepFailure {}

/** The build did not end within the step's timeout. */
export class BuildTimeoutError extends StepFailure {}
