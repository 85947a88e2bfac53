import { resolve } from 'node:path';
import { InvalidInputError } from '../errors.js';

export type Provider = 'gh' | 'gl' | 'gist' | 'git' | 'local';

/** What to build, before its ref is resolved. */
export interface RepoSpec {
  provider: Provider;
  /** A git URL (http, https or git), or an absolute directory path for `local`. */
  url: string;
  /** Branch, tag, full SHA or `HEAD` (the default branch); unresolved. */
  ref: string;
  /** BinderHub's build slug: the part of the image name that names the repository. */
  buildSlug: string;
  /** `<provider>/<spec without ref>`, the `bindery.repo` label. */
  repoLabel: string;
}

const GIT_SCHEMES = new Set(['http:', 'https:', 'git:']);

/** Refuses refs git would read as options or that no git ref can be. */
export function validateRef(ref: string): string {
  if (
    ref === '' ||
    ref.length > 255 ||
    ref.startsWith('-') ||
    ref.includes('..') ||
    // eslint-disable-next-line no-control-regex -- control characters are exactly what git refuses
    /[\s\0-\x1f\x7f~^:?*[\\]/.test(ref.replace(/\^\{\}$/, ''))
  ) {
    throw new InvalidInputError(
      `"${ref}" is not a valid git ref; use a branch name, a tag, a full commit SHA or HEAD.`,
    );
  }
  return ref;
}

/** Checks that `text` is a git URL Bindery may clone: http, https or git, no credentials. */
export function parseGitUrl(text: string): URL {
  if (/^[\w.-]+@[\w.-]+:/.test(text)) {
    throw new InvalidInputError(
      `${text} is an SSH address; Bindery clones public repositories over https, e.g. ` +
        `https://${text.replace(/^[\w.-]+@/, '').replace(':', '/')}.`,
    );
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new InvalidInputError(
      `"${text}" is not a URL; give a git URL such as https://host/owner/repo.`,
    );
  }
  if (!GIT_SCHEMES.has(url.protocol)) {
    throw new InvalidInputError(
      `${url.protocol.replace(':', '')} URLs are not supported; use an http, https or git URL.`,
    );
  }
  if (url.username || url.password) {
    throw new InvalidInputError(
      `Remove the credentials from ${url.host} in the URL; Bindery builds public repositories only.`,
    );
  }
  return url;
}

/**
 * What `bindery build <path|url>` names: a git URL (checked) or a local directory.
 */
export function parseSource(arg: string, ref?: string): RepoSpec {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(arg) || /^[\w.-]+@[\w.-]+:/.test(arg)) {
    const url = parseGitUrl(arg).href;
    return {
      provider: 'git',
      url,
      ref: validateRef(ref ?? 'HEAD'),
      buildSlug: url,
      repoLabel: `git/${url}`,
    };
  }
  if (ref !== undefined) {
    throw new InvalidInputError(
      `A ref (${ref}) applies to git URLs; ${arg} is a directory, built as its files are now.`,
    );
  }
  const path = resolve(arg);
  const name = path.split('/').filter(Boolean).at(-1) ?? 'root';
  return {
    provider: 'local',
    url: path,
    ref: 'local',
    buildSlug: `local-${name}`,
    repoLabel: `local/${path}`,
  };
}

function decode(part: string, what: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new InvalidInputError(`The ${what} "${part}" is not correctly URL-escaped.`);
  }
}

/** Splits `text` at the first `count` slashes; the last part keeps any further slashes. */
function splitSpec(text: string, count: number): string[] {
  const parts: string[] = [];
  let rest = text;
  for (let i = 0; i < count; i++) {
    const at = rest.indexOf('/');
    if (at < 0) break;
    parts.push(rest.slice(0, at));
    rest = rest.slice(at + 1);
  }
  return [...parts, rest];
}

/**
 * Parses a BinderHub spec (the part of `/v2/<provider>/<spec>` after the provider) into the
 * repository it names. `githubUrl` is `GHE_PROTOCOL://GHE_HOST` for GitHub Enterprise.
 */
export function parseSpec(
  provider: string,
  spec: string,
  { githubUrl = 'https://github.com' } = {},
): RepoSpec {
  switch (provider) {
    case 'gh': {
      const [owner, repo, ref] = splitSpec(spec, 2);
      if (!owner || !repo || !ref) {
        throw new InvalidInputError(
          `GitHub specs look like gh/OWNER/REPO/REF; "${spec}" is not one.`,
        );
      }
      const name = repo.replace(/\.git$/, '');
      if (!/^[\w.-]+$/.test(owner) || !/^[\w.-]+$/.test(name)) {
        throw new InvalidInputError(`"${owner}/${name}" is not a GitHub repository name.`);
      }
      return {
        provider,
        url: `${githubUrl}/${owner}/${name}`,
        ref: validateRef(decode(ref, 'ref')),
        buildSlug: `${owner}-${name}`,
        repoLabel: `gh/${owner}/${name}`,
      };
    }
    case 'gl': {
      const [quoted, ref] = splitSpec(spec, 1);
      const namespace = decode(quoted ?? '', 'GitLab project');
      if (!namespace.includes('/') || !ref) {
        throw new InvalidInputError(
          `GitLab specs look like gl/GROUP%2FPROJECT/REF (the project path URL-escaped); "${spec}" is not one.`,
        );
      }
      return {
        provider,
        url: `https://gitlab.com/${namespace.replace(/\.git$/, '')}.git`,
        ref: validateRef(decode(ref, 'ref')),
        // BinderHub's slug: dashes inside a part become `_-`, so a-b/c and a/b-c stay distinct.
        buildSlug: namespace
          .split('/')
          .map((part) => part.replace(/-/g, '_-'))
          .join('-'),
        repoLabel: `gl/${namespace}`,
      };
    }
    case 'gist': {
      const [user, id, ref = 'HEAD'] = splitSpec(spec, 2);
      if (!user || !id || !/^[\w-]+$/.test(user) || !/^[0-9a-f]+$/i.test(id)) {
        throw new InvalidInputError(
          `Gist specs look like gist/USER/GIST_ID[/REF]; "${spec}" is not one.`,
        );
      }
      return {
        provider,
        url: `https://gist.github.com/${user}/${id}.git`,
        ref: validateRef(decode(ref, 'ref')),
        // BinderHub names gist images by the gist id alone.
        buildSlug: id,
        repoLabel: `gist/${user}/${id}`,
      };
    }
    case 'git': {
      const [quoted, ref] = splitSpec(spec, 1);
      if (!quoted || !ref) {
        throw new InvalidInputError(
          `Git specs look like git/URL-ESCAPED-URL/REF; "${spec}" is not one.`,
        );
      }
      const url = parseGitUrl(decode(quoted, 'repository URL')).href;
      return {
        provider,
        url,
        ref: validateRef(decode(ref, 'ref')),
        buildSlug: url,
        repoLabel: `git/${url}`,
      };
    }
    default:
      throw new InvalidInputError(
        `"${provider}" is not a repository provider; use gh, gl, gist or git.`,
      );
  }
}
