import { createHash } from 'node:crypto';

const SAFE = /[a-zA-Z0-9]/;

/**
 * escapism's escape(): every UTF-8 byte outside [a-zA-Z0-9] becomes `-` and its hex value,
 * upper case and unpadded as Python's `f"{byte:X}"` writes it (so a tab is `-9`, not `-09`).
 */
export function escapeSlug(text: string): string {
  let out = '';
  for (const char of text) {
    if (SAFE.test(char)) out += char;
    else for (const byte of Buffer.from(char)) out += `-${byte.toString(16).toUpperCase()}`;
  }
  return out;
}

/**
 * BinderHub's `_safe_build_slug`: the escaped slug cut to fit `limit`, plus `-` and the first
 * six hex digits of its SHA-256, lowercased. The hash keeps slugs distinct after cutting.
 */
export function safeBuildSlug(buildSlug: string, limit: number, hashLength = 6): string {
  const hash = createHash('sha256').update(buildSlug).digest('hex').slice(0, hashLength);
  return `${escapeSlug(buildSlug).slice(0, limit - hashLength - 1)}-${hash}`.toLowerCase();
}

/**
 * The image for `buildSlug` at `ref` (a commit SHA): `<prefix><safe slug>:<ref>`, as BinderHub
 * names them, so one commit always maps to one image and is never built twice.
 */
export function imageNameFor(prefix: string, buildSlug: string, ref: string): string {
  const slug = safeBuildSlug(buildSlug, 255 - prefix.length);
  return `${prefix}${slug}:${ref}`.replace(/_/g, '-').toLowerCase();
}

/**
 * The name the layers of a failed build of `imageName` are kept under, `…:failed-<ref>`: under
 * the prefix, so the image budget counts and removes them, and never the name a launch, the
 * status badge or the builder's cache check asks for (a ref is a commit SHA or a content hash).
 */
export function failedImageNameFor(imageName: string): string {
  const colon = imageName.lastIndexOf(':');
  const tagged = colon > imageName.lastIndexOf('/');
  const repo = tagged ? imageName.slice(0, colon) : imageName;
  const tag = tagged ? imageName.slice(colon + 1) : 'latest';
  return `${repo}:failed-${tag}`.slice(0, repo.length + 1 + 128);
}
