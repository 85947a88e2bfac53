import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Redis } from 'ioredis';
import type { Config } from '../config.js';
import { sessionUrl } from '../proxy/session-host.js';
import type { PrivateAccess } from './private-access.js';
import type { SignedInUser } from './signed-in-users.js';

/** How long a share link of a private session works (the people it let in keep their time). */
export const SHARE_TTL_SECONDS = 3600;

/** The query parameter a share link of a private session carries. */
export const SHARE_PARAMETER = 'bindery_share';

/**
 * Sessions of private repositories: reachable only by the signed-in user who launched one and
 * by the signed-in users who opened a share link of it before the link expired, each request
 * checked against GitHub's word that they may still read the repository (PrivateAccess, cached
 * briefly). The session token alone is not enough. Records live in Redis under
 * `<namespace>:private-session:`, `:private-share:` and `:private-viewer:`.
 */
export class PrivateSessions {
  constructor(
    private readonly redis: Redis,
    private readonly namespace: string,
    private readonly access: PrivateAccess,
    /** How long a session may live (BINDERY_MAX_AGE): its records go with it. */
    private readonly maxAgeSeconds: number,
  ) {}

  private key(kind: string, ...parts: string[]) {
    return [`${this.namespace}:private-${kind}`, ...parts].join(':');
  }

  /** Marks `session` private: `user` launched it from `owner/repo`. */
  async record(session: string, user: Pick<SignedInUser, 'id'>, repo: string): Promise<void> {
    await this.redis
      .multi()
      .hset(this.key('session', session), { owner: String(user.id), repo })
      .expire(this.key('session', session), this.maxAgeSeconds)
      .exec();
  }

  private ownerOf(session: string) {
    return this.redis.hget(this.key('session', session), 'owner');
  }

  /**
   * A share id for `session`, when `user` launched it (else undefined): a link carrying it lets
   * signed-in readers of the repository in for SHARE_TTL_SECONDS.
   */
  async share(session: string, user: Pick<SignedInUser, 'id'>): Promise<string | undefined> {
    if ((await this.ownerOf(session)) !== String(user.id)) return undefined;
    const id = randomBytes(24).toString('base64url');
    await this.redis.set(this.key('share', id), session, 'EX', SHARE_TTL_SECONDS);
    return id;
  }

  /**
   * The share link of private `session` for the signed-in user of `request`, when they launched
   * it: its URL with the session token and a new share id. Undefined for a public session, or
   * for anyone else.
   */
  async shareUrl(
    request: IncomingMessage,
    session: { name: string; token: string },
    config: Pick<Config, 'publicUrl' | 'sessionHost'>,
  ): Promise<string | undefined> {
    const user = await this.access.users.fromCookies(request.headers.cookie);
    const shareId = user && (await this.share(session.name, user));
    if (!shareId) return undefined;
    const query = new URLSearchParams({ token: session.token, [SHARE_PARAMETER]: shareId });
    return `${sessionUrl(config, session.name)}?${query}`;
  }

  /**
   * Whether the proxy may pass `request` to `session`: always for a public session; for a
   * private one only a signed-in user who launched it or was let in by a live share link, and
   * who may read the repository now.
   */
  async admits(request: IncomingMessage, session: string): Promise<boolean> {
    const recorded = await this.redis.hgetall(this.key('session', session));
    if (!recorded.repo) return true;
    const user = await this.access.users.fromCookies(request.headers.cookie);
    if (!user) return false;
    if (recorded.owner !== String(user.id) && !(await this.sharedWith(request, session, user))) {
      return false;
    }
    return this.canRead(user, recorded.repo);
  }

  /**
   * Whether a live share link let `user` into `session`: the one this request carries (which
   * then lets them in for the link's remaining time), or one they opened before. Access that a
   * link gave ends when the link expires.
   */
  private async sharedWith(request: IncomingMessage, session: string, user: SignedInUser) {
    const viewer = this.key('viewer', session, String(user.id));
    const presented = new URL(request.url ?? '/', 'http://proxy').searchParams.get(SHARE_PARAMETER);
    const shareId = presented ?? (await this.redis.get(viewer));
    if (!shareId) return false;
    const share = this.key('share', shareId);
    const [sharedSession, left] = await Promise.all([
      this.redis.get(share),
      this.redis.pttl(share),
    ]);
    if (sharedSession !== session || left <= 0) return false;
    if (presented) await this.redis.set(viewer, shareId, 'PX', left);
    return true;
  }

  private canRead(user: SignedInUser, fullName: string) {
    const [owner = '', repo = ''] = fullName.split('/');
    return this.access.canRead(user, owner, repo);
  }
}
