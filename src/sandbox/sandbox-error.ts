import { BinderyError } from '../errors.js';

/** Sessions or builds are refused while the sandbox is not in place. */
export class SandboxError extends BinderyError {
  override readonly status = 503;
}
