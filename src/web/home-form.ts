import { BinderyError } from '../errors.js';
import { parseSpec, validateRef } from '../repos/repo-spec.js';

/** The providers the home page offers, as BinderHub's form names them. */
export const PROVIDERS = {
  gh: 'GitHub',
  gl: 'GitLab.com',
  gist: 'GitHub Gist',
  git: 'Git repository (any URL)',
} as const;
export type FormProvider = keyof typeof PROVIDERS;

/** What a visitor typed into the home page's form (its query). */
export interface HomeFormInput {
  provider: FormProvider;
  repo: string;
  ref: string;
  /** A file to open (`labpath`) or a URL path (`urlpath`), as `pathType` says. */
  path: string;
  pathType: 'file' | 'url';
}

export type HomeFormField = 'provider' | 'repo' | 'ref' | 'path';

/** The launch URL and the badges made from a valid form. */
export interface Launch {
  url: string;
  markdown: string;
  rst: string;
  html: string;
}

export type HomeFormResult =
  | { input: HomeFormInput; launch: Launch; errors?: undefined }
  | { input: HomeFormInput; launch?: undefined; errors: Partial<Record<HomeFormField, string>> };

const first = (value: unknown): string => {
  const one: unknown = Array.isArray(value) ? value[0] : value;
  return typeof one === 'string' ? one.trim() : '';
};

/** The form's fields from the home page's query; unknown values fall back to the defaults. */
export function homeFormInput(query: Record<string, unknown>): HomeFormInput {
  const provider = first(query.provider);
  return {
    provider: provider in PROVIDERS ? (provider as FormProvider) : 'gh',
    repo: first(query.repo),
    ref: first(query.ref),
    path: first(query.path),
    pathType: first(query.pathType) === 'url' ? 'url' : 'file',
  };
}

/**
 * A pasted web address of a known host read as that host's provider, the way mybinder.org's
 * form understands `https://github.com/owner/repo/tree/branch`: the provider and repository it
 * names, and its ref when the address has one. Anything else is left as typed.
 */
export function understandPastedUrl(input: HomeFormInput): HomeFormInput {
  let url: URL;
  try {
    url = new URL(input.repo);
  } catch {
    return input;
  }
  const parts = url.pathname.split('/').filter(Boolean);
  const host = url.hostname.toLowerCase();
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return input;
  if (host === 'github.com' && parts.length >= 2) {
    // github.com/<owner>/<repo>[/tree|blob/<ref>/…]
    const ref = parts[2] === 'tree' || parts[2] === 'blob' ? (parts[3] ?? '') : '';
    return {
      ...input,
      provider: 'gh',
      repo: `${parts[0]}/${parts[1]!.replace(/\.git$/, '')}`,
      ref: input.ref || decodeURIComponent(ref),
    };
  }
  if (host === 'gist.github.com' && parts.length >= 2) {
    return { ...input, provider: 'gist', repo: `${parts[0]}/${parts[1]!.replace(/\.git$/, '')}` };
  }
  if (host === 'gitlab.com' && parts.length >= 2) {
    // gitlab.com/<group>/…/<project>[/-/tree/<ref>]
    const dash = parts.indexOf('-');
    const project = dash < 0 ? parts : parts.slice(0, dash);
    const ref = dash >= 0 && parts[dash + 1] === 'tree' ? (parts[dash + 2] ?? '') : '';
    return {
      ...input,
      provider: 'gl',
      repo: project.join('/').replace(/\.git$/, ''),
      ref: input.ref || decodeURIComponent(ref),
    };
  }
  return { ...input, provider: 'git' };
}

const REPO_HINT: Record<FormProvider, string> = {
  gh: 'Give the GitHub repository as owner/name, e.g. binder-examples/requirements, or paste its https://github.com/… address.',
  gl: 'Give the GitLab project as group/project, e.g. gitlab-org/gitlab-docs, or paste its https://gitlab.com/… address.',
  gist: 'Give the gist as user/id, e.g. jdoe/0123456789abcdef, or paste its https://gist.github.com/… address.',
  git: 'Give the repository’s git URL, e.g. https://example.org/group/project.git.',
};

/** The `/v2/…` spec of a repository as the form names it. */
function specFor(provider: FormProvider, repo: string, ref: string): string {
  const escapedRef = encodeURIComponent(ref);
  switch (provider) {
    case 'gh':
    case 'gist':
      return `${provider}/${repo}/${escapedRef}`;
    case 'gl':
    case 'git':
      return `${provider}/${encodeURIComponent(repo)}/${escapedRef}`;
  }
}

/**
 * The launch URL and badge markup for the form's input, as mybinder.org's form makes them
 * (Markdown and reStructuredText, plus HTML), with the badge image at this service's
 * `/badge_logo.svg`; or, for each field that is wrong, a sentence saying what to fix.
 */
export function evaluateHomeForm(
  typed: HomeFormInput,
  options: { publicUrl: string; githubUrl?: string },
): HomeFormResult {
  const input = understandPastedUrl(typed);
  const errors: Partial<Record<HomeFormField, string>> = {};
  const ref = input.ref || 'HEAD';
  try {
    validateRef(ref);
  } catch (error) {
    errors.ref = (error as Error).message;
  }
  if (input.repo === '') {
    errors.repo = REPO_HINT[input.provider];
  } else if (
    (input.provider === 'gh' || input.provider === 'gist') &&
    !/^[^/]+\/[^/]+$/.test(input.repo)
  ) {
    errors.repo = `"${input.repo}" is not two names joined by one slash. ${REPO_HINT[input.provider]}`;
  } else {
    try {
      parseSpec(
        input.provider,
        specFor(input.provider, input.repo, 'HEAD').slice(input.provider.length + 1),
        {
          githubUrl: options.githubUrl,
        },
      );
    } catch (error) {
      const reason = error instanceof BinderyError ? error.message : String(error);
      errors.repo = input.provider === 'git' ? reason : `${reason} ${REPO_HINT[input.provider]}`;
    }
  }
  // eslint-disable-next-line no-control-regex -- a path with control characters opens nothing
  if (/[\0-\x1f\x7f]/.test(input.path)) {
    errors.path =
      'The path to open has control characters; give a file path such as index.ipynb or a URL path such as lab.';
  } else if (input.pathType === 'url' && /^[a-z][a-z0-9+.-]*:/i.test(input.path)) {
    errors.path = `A URL path opens inside the session, so it has no scheme: give e.g. lab/tree/index.ipynb or voila/render/app.ipynb, not ${input.path}.`;
  }
  if (Object.keys(errors).length > 0) return { input, errors };

  const base = options.publicUrl.replace(/\/+$/, '');
  const path = input.path.replace(/^\/+/, '');
  const query =
    path === ''
      ? ''
      : `?${input.pathType === 'file' ? 'labpath' : 'urlpath'}=${encodeURIComponent(path)}`;
  const url = `${base}/v2/${specFor(input.provider, input.repo, ref)}${query}`;
  const badge = `${base}/badge_logo.svg`;
  return {
    input,
    launch: {
      url,
      markdown: `[![Binder](${badge})](${url})`,
      rst: `.. image:: ${badge}\n :target: ${url}`,
      html: `<a href="${escapeAttribute(url)}"><img src="${escapeAttribute(badge)}" alt="Launch Binder"></a>`,
    },
  };
}

/** The launch URL inside an HTML attribute of the badge markup a visitor copies. */
const escapeAttribute = (text: string) => text.replace(/&/g, '&amp;').replace(/"/g, '&quot;');
