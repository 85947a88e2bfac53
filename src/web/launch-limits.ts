import { createHash, timingSafeEqual } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import type { Request } from 'express';
import type { Redis } from 'ioredis';
import type { Config } from '../config.js';
import { BinderyError, ForbiddenError } from '../errors.js';
import { providerFor } from '../repos/provider-registry.js';
import type { RepoSpec } from '../repos/repo-spec.js';

export class RateLimitError extends BinderyError {
  override readonly status = 429;
  override readonly retryable = true;

  /** `retryAfterSeconds`: when the client's window ends, for a `Retry-After` header. */
  constructor(
    message: string,
    readonly retryAfterSeconds = 60,
  ) {
    super(message);
  }
}

const digest = (text: string) => createHash('sha256').update(text).digest();

/**
 * Whether `authorization` (`Bearer <token>` or `token <token>`) carries one of `tokens`.
 * Compared as SHA-256 digests in constant time, so neither the token nor its length leaks.
 */
export function hasApiToken(authorization: string | undefined, tokens: readonly string[]): boolean {
  const presented = /^(?:bearer|token)\s+(\S+)$/i.exec(authorization ?? '')?.[1];
  if (!presented) return false;
  const candidate = digest(presented);
  return tokens.reduce((found, token) => timingSafeEqual(digest(token), candidate) || found, false);
}

/**
 * Who a request counts against (clientKey of its address), or undefined for a holder of one of
 * `tokens`, who is not counted. A wrong token is refused (ForbiddenError) rather than treated as
 * none: it is a mistake to report, not a reason to fall back to anonymous use.
 */
export function requestClient(request: Request, tokens: readonly string[]): string | undefined {
  const authorization = request.get('authorization');
  if (!authorization) return clientKey(request.ip);
  if (hasApiToken(authorization, tokens)) return undefined;
  throw new ForbiddenError('The API token sent in Authorization is not one this service accepts.');
}

/** The eight 16-bit groups of a valid IPv6 address; a dotted IPv4 tail counts as two. */
function ipv6Groups(address: string): number[] {
  const text = address.replace(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/, (_, a, b, c, d) =>
    [Number(a) * 256 + Number(b), Number(c) * 256 + Number(d)].map((n) => n.toString(16)).join(':'),
  );
  const [head = '', tail] = text.split('::');
  const groups = (part: string) => (part === '' ? [] : part.split(':'));
  const before = groups(head);
  const after = tail === undefined ? [] : groups(tail);
  const zeros = tail === undefined ? [] : Array<string>(8 - before.length - after.length).fill('0');
  return [...before, ...zeros, ...after].map((group) => parseInt(group, 16));
}

/**
 * Who counts as one client for the launch rate and the per-client session limit: an IPv4
 * address is itself; an IPv6 address counts by its /64, since one subscriber is routinely
 * given a whole /64 and can pick a new address in it for every request; an IPv4-mapped IPv6
 * address (`::ffff:a.b.c.d`, what a dual-stack socket reports) is the IPv4 address.
 */
export function clientKey(ip: string | undefined): string {
  const address = (ip ?? '').replace(/%.*$/, '');
  if (isIPv4(address)) return address;
  if (!isIPv6(address)) return 'unknown';
  const groups = ipv6Groups(address);
  if (groups.slice(0, 5).every((group) => group === 0) && groups[5] === 0xffff) {
    const [high = 0, low = 0] = groups.slice(6);
    return [high >> 8, high & 0xff, low >> 8, low & 0xff].join('.');
  }
  return `${groups
    .slice(0, 4)
    .map((group) => group.toString(16))
    .join(':')}::/64`;
}

/**
 * The ways one spec can be written, for matching ban and allow patterns: as it came in the
 * URL, and its canonical forms, decoded and escaped as its provider writes them (the
 * provider's banSubjects: a git URL as WHATWG URL parsing normalises it, `.git` dropped from
 * GitHub names, every escape decoded, runs of slashes in a git URL's path made one).
 */
export function specSubjects(spec: RepoSpec, path: string): string[] {
  return [`${spec.provider}/${path}`, ...providerFor(spec.provider).banSubjects(spec)];
}

/** Operators' patterns, matched ignoring case: GitHub and GitLab names and URL hosts do. */
const ignoringCase = new WeakMap<RegExp, RegExp>();
function caseless(pattern: RegExp): RegExp {
  let found = ignoringCase.get(pattern);
  if (!found) {
    found = pattern.ignoreCase ? pattern : new RegExp(pattern.source, `${pattern.flags}i`);
    ignoringCase.set(pattern, found);
  }
  return found;
}

/**
 * Refuses specs the operator banned, or that no allowed pattern matches. Patterns are tried
 * against every way of writing the spec (specSubjects), ignoring case, so `gh/Evil/Repo` or
 * `gl/evil%2fproject` does not slip past a ban of `gh/evil/repo` or `gl/evil%2Fproject`.
 */
export function checkSpecAllowed(quotas: Config['quotas'], spec: RepoSpec, path: string): void {
  const subjects = specSubjects(spec, path);
  const matches = (pattern: RegExp) =>
    subjects.some((subject) => {
      const caselessPattern = caseless(pattern);
      caselessPattern.lastIndex = 0;
      return caselessPattern.test(subject);
    });
  if (quotas.bannedSpecs.some(matches)) {
    throw new ForbiddenError(`${spec.repoLabel} is not allowed on this service.`);
  }
  if (quotas.allowedSpecs.length > 0 && !quotas.allowedSpecs.some(matches)) {
    throw new ForbiddenError(
      `${spec.repoLabel} is not among the repositories this service launches.`,
    );
  }
}

/**
 * Counts one request from `client` (a clientKey) in `bucket` in the minute since its first
 * counted one (in Redis, so every web process shares the count) and refuses it past
 * `perMinute` with `refusal`, saying when the window ends. 0 is no limit.
 */
export async function checkRate(
  redis: Redis,
  {
    bucket,
    client,
    perMinute,
    namespace = 'bindery',
    refusal,
  }: { bucket: string; client: string; perMinute: number; namespace?: string; refusal: string },
): Promise<void> {
  if (perMinute <= 0) return;
  // A window that opens with the client's first request, so two requests a second apart are
  // never split across two calendar minutes.
  const key = `${namespace}:${bucket}:${client}`;
  const [, [, count], [, ttl]] = (await redis
    .multi()
    .set(key, 0, 'EX', 60, 'NX')
    .incr(key)
    .ttl(key)
    .exec()) as [unknown, [unknown, number], [unknown, number]];
  if (count > perMinute) throw new RateLimitError(refusal, Math.max(1, ttl));
}

/** Counts a launch from `client` and refuses it past `perMinute` launches a minute (checkRate). */
export function checkLaunchRate(
  redis: Redis,
  client: string,
  perMinute: number,
  namespace = 'bindery',
): Promise<void> {
  return checkRate(redis, {
    bucket: 'launch-rate',
    client,
    perMinute,
    namespace,
    refusal: `Too many launches from ${client} (more than ${perMinute} a minute). Wait a minute, or use an API token.`,
  });
}
