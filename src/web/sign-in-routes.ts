import { createHash, randomBytes } from 'node:crypto';
import express, { type Request, type Response, type Router } from 'express';
import type { Redis } from 'ioredis';
import type { Config } from '../config.js';
import type { Logger } from '../log/create-log.js';
import { githubApiUrl } from '../repos/github-refs.js';
import { cookieValue, sameSecret } from './session-bar-auth.js';
import {
  cookieAttributes,
  SignedInUsers,
  USER_COOKIE,
  SIGN_IN_TTL_SECONDS,
} from './signed-in-users.js';

/** Binds a sign-in under way to the browser that started it (login CSRF). */
const STATE_COOKIE = 'bindery-sign-in';
/** How long GitHub's consent page may take. */
const STATE_TTL_SECONDS = 600;

export interface SignInDeps {
  config: Pick<Config, 'publicUrl' | 'githubUrl' | 'signIn'>;
  redis: Redis;
  namespace: string;
  log: Logger;
  /** How GitHub is asked; the global fetch by default. */
  fetch?: typeof fetch;
}

/**
 * Where to go after signing in: a path of this service only (never `//host` or a URL), so that
 * a sign-in link cannot send the visitor elsewhere.
 */
export function safeNext(next: unknown): string {
  return typeof next === 'string' && /^\/(?![/\\])/.test(next) ? next : '/';
}

/** The sign-in link for a visitor who wanted `next`. */
export const signInPath = (next: string) => `/sign-in?next=${encodeURIComponent(safeNext(next))}`;

const base64url = (bytes: Buffer) => bytes.toString('base64url');

/**
 * "Sign in with GitHub": GitHub's web application flow for the GitHub App's OAuth client, with
 * `state` (one use, bound to this browser by a cookie) and PKCE (S256). GET /sign-in starts it,
 * GitHub comes back to /sign-in/callback, and /sign-out ends it.
 * https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/generating-a-user-access-token-for-a-github-app
 */
export function signInRoutes(deps: SignInDeps): Router {
  const { config, redis, namespace } = deps;
  const ask = deps.fetch ?? fetch;
  const users = new SignedInUsers(redis, namespace);
  const pending = (state: string) => `${namespace}:sign-in:${state}`;
  const callbackUrl = `${config.publicUrl}/sign-in/callback`;
  const router = express.Router();
  const refuse = (response: Response, status: number, sentence: string) =>
    response.status(status).type('text/plain').send(`${sentence}\n`);

  router.get('/sign-in', async (request: Request, response: Response) => {
    if (!config.signIn) {
      refuse(
        response,
        404,
        'Sign-in is off on this Bindery: its operator has not set GITHUB_CLIENT_ID and GITHUB_CLIENT_SECRET.',
      );
      return;
    }
    const state = base64url(randomBytes(32));
    const verifier = base64url(randomBytes(32));
    const challenge = base64url(createHash('sha256').update(verifier).digest());
    const next = safeNext(request.query.next);
    await redis.set(pending(state), JSON.stringify({ verifier, next }), 'EX', STATE_TTL_SECONDS);
    const authorize = new URL('/login/oauth/authorize', config.githubUrl);
    authorize.search = new URLSearchParams({
      client_id: config.signIn.clientId,
      redirect_uri: callbackUrl,
      state,
      code_challenge: challenge,
      code_challenge_method: 'S256',
    }).toString();
    response
      .set(
        'set-cookie',
        `${STATE_COOKIE}=${state}; ${cookieAttributes(config.publicUrl, '/sign-in', STATE_TTL_SECONDS)}`,
      )
      .set('cache-control', 'no-store')
      .redirect(302, authorize.href);
  });

  router.get('/sign-in/callback', async (request: Request, response: Response) => {
    if (!config.signIn) {
      refuse(response, 404, 'Sign-in is off on this Bindery.');
      return;
    }
    const { code, state, error } = request.query;
    if (typeof error === 'string') {
      refuse(response, 403, `GitHub did not sign you in (${error}); nothing was changed.`);
      return;
    }
    const cookieState = cookieValue(request.headers.cookie, STATE_COOKIE);
    if (
      typeof code !== 'string' ||
      typeof state !== 'string' ||
      !cookieState ||
      !sameSecret(state, cookieState)
    ) {
      refuse(
        response,
        400,
        'This sign-in did not start in this browser, or it is incomplete: start again from "Sign in with GitHub".',
      );
      return;
    }
    // One use: a replayed callback finds nothing.
    const started = await redis.getdel(pending(state));
    if (!started) {
      refuse(response, 400, 'This sign-in has expired or was used already: sign in again.');
      return;
    }
    const { verifier, next } = JSON.parse(started) as { verifier: string; next: string };
    const user = await exchange(code, verifier).catch((failure: Error) => failure);
    if (user instanceof Error) {
      deps.log.warn(`sign-in failed: ${user.message}`);
      refuse(response, 502, `GitHub did not complete the sign-in (${user.message}); try again.`);
      return;
    }
    const id = await users.add(user);
    deps.log.info({ user: user.login }, 'signed in with GitHub');
    response
      .set('set-cookie', [
        `${USER_COOKIE}=${id}; ${cookieAttributes(config.publicUrl, '/', SIGN_IN_TTL_SECONDS)}`,
        `${STATE_COOKIE}=; ${cookieAttributes(config.publicUrl, '/sign-in', 0)}`,
      ])
      .set('cache-control', 'no-store')
      .redirect(302, next);
  });

  const signOut = async (request: Request, response: Response) => {
    await users.remove(request.headers.cookie);
    response
      .set('set-cookie', `${USER_COOKIE}=; ${cookieAttributes(config.publicUrl, '/', 0)}`)
      .redirect(303, '/');
  };
  router.post('/sign-out', signOut);
  router.get('/sign-out', signOut);

  /** Trades GitHub's code (with the PKCE verifier) for the user's token, and asks who they are. */
  async function exchange(code: string, verifier: string) {
    const { clientId, clientSecret } = config.signIn!;
    const traded = await ask(new URL('/login/oauth/access_token', config.githubUrl), {
      method: 'POST',
      headers: { accept: 'application/json', 'content-type': 'application/json' },
      body: JSON.stringify({
        client_id: clientId,
        client_secret: clientSecret,
        code,
        redirect_uri: callbackUrl,
        code_verifier: verifier,
      }),
      signal: AbortSignal.timeout(15_000),
    });
    const answer = (await traded.json().catch(() => ({}))) as {
      access_token?: string;
      error?: string;
    };
    if (!traded.ok || !answer.access_token) {
      throw new Error(answer.error ?? `the token exchange answered ${traded.status}`);
    }
    const token = answer.access_token;
    const asked = await ask(`${githubApiUrl(config.githubUrl)}/user`, {
      headers: {
        accept: 'application/vnd.github+json',
        authorization: `Bearer ${token}`,
        'x-github-api-version': '2022-11-28',
      },
      signal: AbortSignal.timeout(15_000),
    });
    if (!asked.ok) throw new Error(`GET /user answered ${asked.status}`);
    const { login, id } = (await asked.json()) as { login: string; id: number };
    return { login, id, token };
  }

  return router;
}
