import { createHash, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { cookieValue } from './session-bar-auth.js';

/** The cookie that names a signed-in visitor's sign-in (an opaque id; the token stays in Redis). */
export const USER_COOKIE = 'bindery-user';

/** How long a sign-in lasts without signing in again. */
export const SIGN_IN_TTL_SECONDS = 8 * 3600;

/** A visitor signed in with GitHub. */
export interface SignedInUser {
  /** GitHub's login and numeric id. */
  login: string;
  id: number;
  /**
   * The user's OAuth token: asked GitHub what they may read, never sent anywhere else (not to
   * a session, not to a build, not to the log).
   */
  token: string;
}

/** Attributes of every cookie Bindery sets: HttpOnly, SameSite=Lax, Secure behind https. */
export function cookieAttributes(publicUrl: string, path: string, maxAgeSeconds: number): string {
  const secure = publicUrl.startsWith('https:') ? '; Secure' : '';
  return `Path=${path}; Max-Age=${maxAgeSeconds}; HttpOnly; SameSite=Lax${secure}`;
}

/**
 * Signed-in visitors in Redis under `<namespace>:signed-in:`, keyed by a hash of the cookie's
 * id (a copy of Redis does not hand out working cookies); each expires after
 * SIGN_IN_TTL_SECONDS.
 */
export class SignedInUsers {
  constructor(
    private readonly redis: Redis,
    private readonly namespace: string,
  ) {}

  private key(id: string) {
    return `${this.namespace}:signed-in:${createHash('sha256').update(id).digest('hex')}`;
  }

  /** Records a sign-in; returns the id the cookie carries. */
  async add(user: SignedInUser): Promise<string> {
    const id = randomBytes(32).toString('base64url');
    await this.redis.set(this.key(id), JSON.stringify(user), 'EX', SIGN_IN_TTL_SECONDS);
    return id;
  }

  /** The visitor a Cookie header names, if they are signed in. */
  async fromCookies(cookies: string | undefined): Promise<SignedInUser | undefined> {
    const id = cookieValue(cookies, USER_COOKIE);
    if (!id) return undefined;
    const stored = await this.redis.get(this.key(id));
    return stored ? (JSON.parse(stored) as SignedInUser) : undefined;
  }

  /** Ends the sign-in a Cookie header names. */
  async remove(cookies: string | undefined): Promise<void> {
    const id = cookieValue(cookies, USER_COOKIE);
    if (id) await this.redis.del(this.key(id));
  }
}
