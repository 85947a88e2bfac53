/** The providers the action knows how to write a spec for. */
export const PROVIDERS = ['gh', 'gl', 'gist', 'git'] as const;
export type Provider = (typeof PROVIDERS)[number];

/** The action's inputs, checked. */
export interface ActionInputs {
  /** The server's base URL, without a trailing slash. */
  server: string;
  /** @defaultValue 'gh' */
  provider: Provider;
  /** As a person writes it; escaped later. @defaultValue GITHUB_REPOSITORY */
  repository: string;
  /** @defaultValue GITHUB_SHA */
  ref: string;
  /** An API token, or undefined when none is given. */
  token: string | undefined;
  /** @defaultValue false */
  launch: boolean;
  /** Seconds before the step gives up. @defaultValue 1800 */
  timeoutSeconds: number;
}

/** A mistake in the workflow file: the message says which input and how to fix it. */
export class InputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = this.constructor.name;
  }
}

/**
 * The value of input `name` as the runner passes it: `INPUT_` + the name upper-cased with
 * spaces as underscores (dashes stay), see
 * https://docs.github.com/en/actions/sharing-automations/creating-actions/metadata-syntax-for-github-actions#inputs
 */
function input(env: NodeJS.ProcessEnv, name: string): string {
  return (env[`INPUT_${name.replace(/ /g, '_').toUpperCase()}`] ?? '').trim();
}

function parseBoolean(name: string, text: string): boolean {
  if (/^(true|yes|1)$/i.test(text)) return true;
  if (/^(false|no|0|)$/i.test(text)) return false;
  throw new InputError(`The input ${name} is "${text}"; use true or false.`);
}

/**
 * Reads the action's inputs from `env` (INPUT_* variables, and GITHUB_REPOSITORY / GITHUB_SHA
 * for the defaults when the action runs outside its action.yml).
 */
export function readInputs(env: NodeJS.ProcessEnv = process.env): ActionInputs {
  const server = input(env, 'server').replace(/\/+$/, '');
  if (!server) throw new InputError('The input server is required: the Bindery base URL.');
  if (!/^https?:\/\/[^/]/i.test(server)) {
    throw new InputError(
      `The input server is "${server}"; give the Bindery base URL, e.g. https://binder.example.org.`,
    );
  }
  const provider = input(env, 'provider') || 'gh';
  if (!(PROVIDERS as readonly string[]).includes(provider)) {
    throw new InputError(
      `The input provider is "${provider}"; use one of ${PROVIDERS.join(', ')}.`,
    );
  }
  const repository = input(env, 'repository') || (env.GITHUB_REPOSITORY ?? '').trim();
  if (!repository) {
    throw new InputError('The input repository is empty and GITHUB_REPOSITORY is not set.');
  }
  const ref = input(env, 'ref') || (env.GITHUB_SHA ?? '').trim() || 'HEAD';
  const timeoutText = input(env, 'timeout') || '1800';
  const timeoutSeconds = Number(timeoutText);
  if (!Number.isFinite(timeoutSeconds) || timeoutSeconds <= 0) {
    throw new InputError(`The input timeout is "${timeoutText}"; give a number of seconds.`);
  }
  return {
    server,
    provider: provider as Provider,
    repository,
    ref,
    token: input(env, 'token') || undefined,
    launch: parseBoolean('launch', input(env, 'launch')),
    timeoutSeconds,
  };
}
