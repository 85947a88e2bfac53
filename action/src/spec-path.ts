import { InputError, type Provider } from './read-inputs.js';

/**
 * The spec part of `/build/<provider>/<spec>` and `/v2/<provider>/<spec>` for `repository` at
 * `ref`, escaped as BinderHub escapes it: gh and gist keep their slashes, gl's namespace and
 * git's URL are one URL-escaped part; the ref is always URL-escaped.
 */
export function specPath(provider: Provider, repository: string, ref: string): string {
  const escapedRef = encodeURIComponent(ref);
  switch (provider) {
    case 'gh':
    case 'gist': {
      const name = repository.replace(/\.git$/, '');
      if (!/^[\w.-]+\/[\w.-]+$/.test(name)) {
        const shape = provider === 'gh' ? 'OWNER/REPO' : 'USER/GIST_ID';
        throw new InputError(
          `The input repository is "${repository}"; for ${provider} use ${shape}.`,
        );
      }
      return `${name}/${escapedRef}`;
    }
    case 'gl':
      return `${encodeURIComponent(repository.replace(/^\/+|\/+$/g, ''))}/${escapedRef}`;
    case 'git':
      return `${encodeURIComponent(repository)}/${escapedRef}`;
  }
}
