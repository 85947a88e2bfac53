/**
 * The few error kinds Bindery raises on purpose. Each carries the HTTP status it becomes at
 * the edge and whether trying again could help; a build that fails because of the repository
 * is never retried. Messages are sentences for the person who caused them.
 */
export class BinderyError extends Error {
  /** HTTP status the error becomes at the edge. */
  readonly status: number = 500;
  /** Whether the same request could succeed later. */
  readonly retryable: boolean = false;

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = this.constructor.name;
  }
}

/** The environment holds a value Bindery cannot use; raised once, at start. */
export class ConfigError extends BinderyError {}

/** A spec, URL, ref or argument is malformed. */
export class InvalidInputError extends BinderyError {
  override readonly status = 400;
}

/** The request is well-formed but not allowed here (a private git host, a banned repo). */
export class ForbiddenError extends BinderyError {
  override readonly status = 403;
}

/** The repository or ref does not exist. */
export class NotFoundError extends BinderyError {
  override readonly status = 404;
}

/** The repository itself cannot be built as it stands: its configuration, size or content. */
export class RepositoryError extends BinderyError {
  override readonly status = 422;
}

/** A build ran and failed; `step` names the Dockerfile step that failed, when known. */
export class BuildError extends BinderyError {
  override readonly status = 422;

  constructor(
    message: string,
    readonly step?: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** Something Bindery depends on (Docker, a git host, Redis) did not answer; try again later. */
export class UnavailableError extends BinderyError {
  override readonly status = 503;
  override readonly retryable = true;
}
