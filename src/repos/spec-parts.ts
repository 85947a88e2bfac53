import { InvalidInputError } from '../errors.js';

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

/** Decodes one URL-escaped part of a spec, or says which part is not escaped correctly. */
export function decodePart(part: string, what: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new InvalidInputError(`The ${what} "${part}" is not correctly URL-escaped.`);
  }
}

/** Decodes percent-escapes until none is left (or what is left is not an escape). */
export function decodeFully(text: string): string {
  let current = text;
  for (let round = 0; round < 8; round++) {
    let next: string;
    try {
      next = decodeURIComponent(current);
    } catch {
      return current;
    }
    if (next === current) return current;
    current = next;
  }
  return current;
}

/** Splits `text` at the first `count` slashes; the last part keeps any further slashes. */
export function splitSpec(text: string, count: number): string[] {
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
 * The two canonical ways of writing a spec for ban matching: `<id>/<name>/<ref>` with every
 * escape decoded (a git host decodes `%2564emo` to `demo` too), and with the ref escaped and the
 * name escaped as the provider's spec paths escape it (`escapeName`).
 */
export function canonicalSubjects(
  id: string,
  decodedName: string,
  ref: string,
  escapeName: boolean,
): string[] {
  const decodedRef = decodeFully(ref);
  const escaped = escapeName ? encodeURIComponent(decodedName) : decodedName;
  return [
    `${id}/${decodedName}/${decodedRef}`,
    `${id}/${escaped}/${encodeURIComponent(decodedRef)}`,
  ];
}
