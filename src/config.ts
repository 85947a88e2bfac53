import { getPrivateKey } from '@probot/get-private-key';
import { z } from 'zod';
import { dockerConnection, type DockerConnection } from './docker-connection.js';
import { ConfigError } from './errors.js';

const UNITS: Record<string, number> = {
  '': 1,
  k: 2 ** 10,
  m: 2 ** 20,
  g: 2 ** 30,
  t: 2 ** 40,
};

/** Whether a URL carries credentials (`scheme://user:password@host/…`). */
export const hasCredentials = (url: string | undefined): boolean =>
  url !== undefined && /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*@/i.test(url);

/**
 * The port of the builds' index forwarder when it runs: some index URL has credentials
 * (src/build/index-access.ts serves it to builds), and the port is fixed (not 0, any free one).
 */
export function indexForwarderPort(build: {
  pipIndexUrl: string | undefined;
  pipExtraIndexUrl: string | undefined;
  indexPort: number;
}): number | undefined {
  const forwarded = hasCredentials(build.pipIndexUrl) || hasCredentials(build.pipExtraIndexUrl);
  return forwarded && build.indexPort > 0 ? build.indexPort : undefined;
}

/** Parses Docker-style sizes: `1g`, `512m`, `100k`, `50GiB`, `2t`, or plain bytes (binary units). */
export function parseByteSize(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?$/i.exec(text.trim());
  if (!match) throw new Error(`"${text}" is not a size; write it like 1g, 512m or 1048576`);
  return Math.round(Number(match[1]) * UNITS[match[2]!.toLowerCase()]!);
}

const byteSize = z.string().transform((text, ctx) => {
  try {
    const bytes = parseByteSize(text);
    // Docker reads a memory limit of 0 as "no limit"; a zero clone or log limit is no use either.
    if (bytes > 0) return bytes;
    ctx.addIssue({
      code: 'custom',
      message: `"${text}" is no bytes at all; give a size such as 1g or 512m`,
    });
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: (error as Error).message });
  }
  return z.NEVER;
});
/** A size where 0 turns the limit off. */
const byteSizeOrOff = z.string().transform((text, ctx) => {
  try {
    return parseByteSize(text);
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: (error as Error).message });
    return z.NEVER;
  }
});
const seconds = z.coerce.number().positive();
const list = z.string().transform((text) =>
  text
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean),
);
const optionalUrl = z.url().optional();

/**
 * A download URL written into build steps (micromamba, CRAN, uv's Python mirror): Docker keeps
 * it in the image's history and the build log shows it, so it may not carry credentials.
 */
const publicBuildUrl = (name: string) =>
  z.url().refine((text) => !hasCredentials(text), {
    message: `has credentials; ${name} is written into build steps, where the image's history and the public build log show it. Use a mirror that needs none (only PIP_INDEX_URL and PIP_EXTRA_INDEX_URL may carry credentials).`,
  });

/**
 * A package index for builds. Credentials in it never reach a build: the builder serves the
 * index to builds through a forwarder that adds them (src/build/index-forwarder.ts), which
 * speaks HTTP and HTTPS only.
 */
const packageIndexUrl = z
  .url()
  .superRefine((text, ctx) => {
    // zod runs this after a failed URL check too, which has said what is wrong already.
    if (!URL.canParse(text)) return;
    const url = new URL(text);
    if (!url.username && !url.password) return;
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      ctx.addIssue({
        code: 'custom',
        message: `has credentials in a ${url.protocol} URL; Bindery passes credentials to builds through its index forwarder, which speaks http and https only. Use an https:// index URL, or one without credentials.`,
      });
      return;
    }
    try {
      decodeURIComponent(url.username);
      decodeURIComponent(url.password);
    } catch {
      ctx.addIssue({
        code: 'custom',
        message:
          'has credentials that are not valid percent-escapes; escape a literal % in the user name or password as %25.',
      });
    }
  })
  .optional();

/**
 * Every variable Bindery reads. Each one's TSDoc (with `@defaultValue`) under its `// ## group`
 * is README.md's configuration reference: `npm run docs:config` renders it, and
 * test/unit/config-reference.test.ts fails while a variable lacks either or the README differs.
 */
const schema = z.object({
  // ## Service
  /** HTTP port of `bindery serve`. @defaultValue 8585 */
  PORT: z.coerce.number().int().min(1).max(65535).default(8585),
  /** Where people reach this service, used in launch URLs and badges. @defaultValue http://localhost:PORT */
  BINDERY_PUBLIC_URL: optionalUrl,
  /**
   * Host name of each session, `{session}` standing for its name, e.g.
   * `{session}.sessions.example.org` (optionally `:port`; scheme and port otherwise from
   * BINDERY_PUBLIC_URL): sessions then get origins of their own. @defaultValue unset: sessions
   * share the service's origin under `/user/<session>/`
   */
  BINDERY_SESSION_HOST: z
    .string()
    .regex(
      /^\{session\}(\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+(:\d{1,5})?$/i,
      'must be a host name whose first label is {session}, like {session}.sessions.example.org',
    )
    .optional(),
  /** Redis for queues, logs and session records. @defaultValue redis://127.0.0.1:6379 */
  REDIS_URL: z.string().default('redis://127.0.0.1:6379'),
  /**
   * The Docker daemon, as Docker's CLI reads it: `unix:///path/docker.sock`, `tcp://host[:port]`
   * (2375, or 2376 with TLS) or `ssh://user@host[:port]` (through `docker system dial-stdio` on
   * that host, which needs the docker CLI there). @defaultValue the local socket
   */
  DOCKER_HOST: z
    .string()
    .regex(
      /^(unix|tcp|ssh):\/\/./,
      'must be unix:///path/docker.sock, tcp://host[:port] or ssh://user@host[:port], as for the docker command',
    )
    .optional(),
  /**
   * Any value talks TLS to a `tcp://` DOCKER_HOST and verifies its certificate, presenting the
   * client certificate of DOCKER_CERT_PATH, as Docker's CLI does. @defaultValue unset: plain HTTP
   */
  DOCKER_TLS_VERIFY: z.string().optional(),
  /** Folder of `ca.pem`, `cert.pem` and `key.pem` for DOCKER_TLS_VERIFY (Docker's names). @defaultValue ~/.docker */
  DOCKER_CERT_PATH: z.string().optional(),
  /** The ssh-agent's socket, for an `ssh://` DOCKER_HOST. @defaultValue none */
  SSH_AUTH_SOCK: z.string().optional(),
  /**
   * Private key (OpenSSH or PEM, without a passphrase; use the agent for one with a passphrase)
   * for an `ssh://` DOCKER_HOST. @defaultValue the first of ~/.ssh/id_ed25519, id_ecdsa, id_rsa
   */
  BINDERY_DOCKER_SSH_KEY: z.string().optional(),
  /**
   * The known_hosts file the `ssh://` DOCKER_HOST's host key must be listed in, as ssh checks it
   * (hashed entries and `[host]:port` included). @defaultValue ~/.ssh/known_hosts
   */
  BINDERY_DOCKER_SSH_KNOWN_HOSTS: z.string().optional(),

  // ## Images
  /** Prefix of every built image name (BinderHub's `image_prefix`). @defaultValue bindery/r2d- */
  BINDERY_IMAGE_PREFIX: z
    .string()
    .regex(/^[a-z0-9][a-z0-9._\-/:]*$/, 'must be a lowercase Docker repository prefix')
    .default('bindery/r2d-'),
  /** Image every rendered Dockerfile starts FROM. @defaultValue bindery/base:bookworm */
  BINDERY_BASE_IMAGE: z.string().min(1).default('bindery/base:bookworm'),
  /**
   * Most disk that built images (under BINDERY_IMAGE_PREFIX) may hold, counting each image's
   * own layers; past it the least recently launched unused images are removed. 0 is no cap.
   * @defaultValue 50g
   */
  BINDERY_IMAGE_BUDGET: byteSizeOrOff.default(50 * 2 ** 30),
  /** Most built images kept; past it the least recently launched unused ones go. 0 is no cap. @defaultValue 500 */
  BINDERY_IMAGE_MAX_COUNT: z.coerce.number().int().nonnegative().default(500),
  /**
   * Free space on Docker's data root below which a build first removes unused images, and is
   * refused if that is not enough; 0 turns the check off. @defaultValue 10g
   */
  BINDERY_DISK_HEADROOM: byteSizeOrOff.default(10 * 2 ** 30),
  /**
   * The operator's registry host (`registry.internal:5000`), where images are shared between
   * hosts: images are named `<registry>/<BINDERY_IMAGE_PREFIX><slug>:<ref>` (a prefix naming the
   * registry already, as BinderHub's image_prefix does, is kept as it is), each build pushes its
   * image there, "is it built?" asks it, and a host without the image pulls it. Docker talks
   * plain HTTP only to 127.0.0.0/8 unless dockerd lists it in `insecure-registries`. Repositories'
   * Dockerfiles may start FROM it even where it resolves to a private address, never FROM an
   * image of Bindery's there. @defaultValue none
   */
  BINDERY_REGISTRY: z
    .string()
    .regex(
      /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:\d{1,5})?$/,
      'must be a registry host, optionally with a port (registry.internal:5000), without a scheme or path; a namespace goes in BINDERY_IMAGE_PREFIX',
    )
    .optional(),
  /**
   * The user Bindery signs in to BINDERY_REGISTRY as, for pushes, pulls and manifest lookups
   * (sent to the Docker daemon as its registry auth, never logged). @defaultValue none
   */
  BINDERY_REGISTRY_USERNAME: z.string().optional(),
  /** The password or access token for BINDERY_REGISTRY_USERNAME. @defaultValue none */
  BINDERY_REGISTRY_PASSWORD: z.string().optional(),

  // ## Sessions and their sandbox
  /** CPUs per session and per build step. @defaultValue 1 */
  BINDERY_SESSION_CPUS: z.coerce.number().positive().default(1),
  /** Memory per session and per build step, without extra swap. @defaultValue 1g */
  BINDERY_SESSION_MEMORY: byteSize.default(2 ** 30),
  /** Processes per session or build container. @defaultValue 512 */
  BINDERY_PIDS_LIMIT: z.coerce.number().int().positive().default(512),
  /** Seconds a session may sit idle before it is culled. @defaultValue 600 */
  BINDERY_IDLE_TIMEOUT: seconds.default(600),
  /** Seconds a session may live at all. @defaultValue 21600 */
  BINDERY_MAX_AGE: seconds.default(21600),
  /**
   * Largest home directory (caches left out) the session bar's "Download my work" sends, counted
   * before compression. @defaultValue 100m
   */
  BINDERY_DOWNLOAD_MAX_SIZE: byteSize.default(100 * 2 ** 20),
  /** TCP ports sessions may connect to on public addresses. @defaultValue 80,443 */
  BINDERY_EGRESS_PORTS: list.default(['80', '443']),
  /** CIDRs exempt from the private-range block (an internal mirror). @defaultValue none */
  BINDERY_EGRESS_ALLOW_CIDRS: list.default([]),
  /** Git hosts that may resolve to loopback or private addresses. @defaultValue none */
  BINDERY_GIT_ALLOWED_HOSTS: list.default([]),
  /** Docker network of sessions and builds, behind Bindery's firewall. @defaultValue bindery-sessions */
  BINDERY_SESSION_NETWORK: z
    .string()
    .regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/, 'must be a Docker network name')
    .default('bindery-sessions'),
  /**
   * `1` lets sessions run when the firewall cannot be installed (no privileges): for
   * development only, and loudly logged. @defaultValue 0
   */
  BINDERY_SANDBOX_OPTOUT: z.enum(['0', '1']).default('0'),
  /** Container runtime for sessions: runc, or runsc (gVisor). @defaultValue runc */
  BINDERY_RUNTIME: z.enum(['runc', 'runsc']).default('runc'),
  /**
   * Where sessions run: `docker`, containers on this host's daemon; `swarm`, one Docker Swarm
   * service per session, created through DOCKER_HOST, which must be a Swarm manager (builds stay
   * on the worker's own daemon either way). @defaultValue docker
   */
  BINDERY_ENGINE: z.enum(['docker', 'swarm']).default('docker'),

  // ## Builds
  /** Seconds a clone may take. @defaultValue 300 */
  BINDERY_CLONE_TIMEOUT: seconds.default(300),
  /** Largest repository (its fetched objects) Bindery clones. @defaultValue 1g */
  BINDERY_CLONE_MAX_SIZE: byteSize.default(2 ** 30),
  /** Seconds an image build may take. @defaultValue 3600 */
  BINDERY_BUILD_TIMEOUT: seconds.default(3600),
  /** Most build log a build may write before it is stopped. @defaultValue 10m */
  BINDERY_BUILD_LOG_MAX: byteSize.default(10 * 2 ** 20),
  /** Builds one `bindery worker` runs at once. @defaultValue 1 */
  BINDERY_BUILD_CONCURRENCY: z.coerce.number().int().positive().default(1),
  /**
   * Seconds after which a build whose worker stopped answering (killed, its machine lost) is
   * handed to another worker; it happens within twice this. A worker renews its hold on a build
   * every half of it, so a value below a few seconds risks a busy worker losing its build
   * (BullMQ's lockDuration and stalledInterval). @defaultValue 30
   */
  BINDERY_WORKER_STALL_TIMEOUT: seconds.default(30),
  /**
   * One Docker network for every build's steps, an operator's own: the sandbox's rules are
   * neither installed nor checked on it. Unset, `bindery serve` and `bindery worker` give each
   * build a network of its own behind the sandbox's rules; `bindery build` uses Docker's bridge.
   * @defaultValue one network per build
   */
  BINDERY_BUILD_NETWORK: z.string().optional(),
  /**
   * Python package index for builds (mirrors, tests), passed as a build argument. One with
   * credentials (`https://user:token@host/simple/`) is served to builds by a forwarder on the
   * build network's gateway that adds them, so builds, their history and their log never hold them.
   * @defaultValue PyPI
   */
  PIP_INDEX_URL: packageIndexUrl,
  /** Extra Python package index for builds, passed like PIP_INDEX_URL. @defaultValue none */
  PIP_EXTRA_INDEX_URL: packageIndexUrl,
  /**
   * Port of the forwarder that serves indexes with credentials to builds, on each build
   * network's gateway only, while a build runs; 0 takes any free port (tests: the address then
   * changes each build, and so do the dependency layers' cache keys). @defaultValue 8586
   */
  BINDERY_BUILD_INDEX_PORT: z.coerce.number().int().min(0).max(65535).default(8586),
  /** Hosts pip may use over plain http (an internal mirror), passed to builds like the indexes. @defaultValue none */
  PIP_TRUSTED_HOST: z.string().optional(),

  // ## Quotas and access
  /** Most sessions running at once; BinderHub's "Too many users" past it. @defaultValue 50 */
  BINDERY_MAX_SESSIONS: z.coerce.number().int().nonnegative().default(50),
  /** Most sessions of one repository at once; 0 is no cap (BinderHub's per_repo_quota). @defaultValue 0 */
  BINDERY_MAX_SESSIONS_PER_REPO: z.coerce.number().int().nonnegative().default(0),
  /**
   * Most sessions one client runs at once (an IPv4 address, or an IPv6 /64), launches under
   * way included; 0 is no cap. API token holders are not counted. Ten is what one address may
   * start in a minute at the default launch rate, a fifth of the default BINDERY_MAX_SESSIONS:
   * one visitor cannot take the whole machine, while a few people behind one NAT still get
   * sessions. Raise it for classrooms behind one address. @defaultValue 10
   */
  BINDERY_MAX_SESSIONS_PER_CLIENT: z.coerce.number().int().nonnegative().default(10),
  /** Launches a minute from one client (an IPv4 address or an IPv6 /64) without an API token; 0 is no limit. @defaultValue 10 */
  BINDERY_LAUNCH_RATE_LIMIT: z.coerce.number().int().nonnegative().default(10),
  /**
   * Status badges (`/status/…svg`) a minute that one client without an API token may have
   * worked out afresh; an answer from the few-second cache is not counted. 0 is no limit.
   * @defaultValue 60
   */
  BINDERY_STATUS_RATE_LIMIT: z.coerce.number().int().nonnegative().default(60),
  /**
   * Regular expressions; a spec (`gh/owner/repo/ref`) matching one is refused. Matched ignoring
   * case, against the spec as sent and its decoded and re-escaped forms (`git/https://host/x/HEAD`
   * and `git/https%3A%2F%2Fhost%2Fx/HEAD` both work). @defaultValue none
   */
  BINDERY_BANNED_SPECS: list.default([]),
  /** Regular expressions; when set, only specs matching one are served (matched as bans are). @defaultValue all */
  BINDERY_ALLOWED_SPECS: list.default([]),
  /** API tokens that allow `build_only` and lift the rate limit. @defaultValue none */
  BINDERY_API_TOKENS: list.default([]),

  // ## GitHub
  /** Token for GitHub's API where the app is not installed (rate limits). @defaultValue none */
  GITHUB_TOKEN: z.string().optional(),
  /** GitHub Enterprise host for `gh` specs (Probot's name). @defaultValue github.com */
  GHE_HOST: z.string().default('github.com'),
  /** Protocol of GHE_HOST. @defaultValue https */
  GHE_PROTOCOL: z.enum(['http', 'https']).default('https'),
  /**
   * The GitHub App's id (Probot's name); with PRIVATE_KEY(_PATH) and WEBHOOK_SECRET it turns the
   * app on. @defaultValue none (app off)
   */
  APP_ID: z.coerce.number().int().positive().optional(),
  /**
   * The app's private key, PEM text (or base64 of it, or with `\n` escapes), as Probot reads it.
   * @defaultValue none
   */
  PRIVATE_KEY: z.string().optional(),
  /** A file holding the app's private key, when PRIVATE_KEY is unset. @defaultValue none */
  PRIVATE_KEY_PATH: z.string().optional(),
  /** The secret GitHub signs webhook deliveries with. @defaultValue none */
  WEBHOOK_SECRET: z.string().optional(),
  /**
   * The GitHub App's own OAuth client id; with GITHUB_CLIENT_SECRET it turns on "Sign in with
   * GitHub" and private repositories for the people who can read them. @defaultValue none (off)
   */
  GITHUB_CLIENT_ID: z.string().min(1).optional(),
  /** The GitHub App's OAuth client secret, with GITHUB_CLIENT_ID. @defaultValue none */
  GITHUB_CLIENT_SECRET: z.string().min(1).optional(),

  // ## Logging
  /**
   * The least severe log lines written, as Probot reads it (the GitHub App's lines included):
   * trace, debug (every proxied request), info, warn, error, fatal or silent. @defaultValue info
   */
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  /**
   * `json` (one object a line, for a log collector) or `pretty` (for a terminal), as Probot reads
   * it. @defaultValue pretty; json when NODE_ENV is production
   */
  LOG_FORMAT: z.enum(['json', 'pretty']).optional(),
  /** `production` makes json the default LOG_FORMAT, as in Probot. @defaultValue none */
  NODE_ENV: z.string().optional(),

  // ## Downloads of builds
  /**
   * Where builds download micromamba for environment.yml.
   * @defaultValue https://micro.mamba.pm/api/micromamba/linux-64/latest
   */
  BINDERY_MICROMAMBA_URL: publicBuildUrl('BINDERY_MICROMAMBA_URL').default(
    'https://micro.mamba.pm/api/micromamba/linux-64/latest',
  ),
  /** CRAN mirror for install.R and DESCRIPTION. @defaultValue https://cloud.r-project.org */
  BINDERY_CRAN_MIRROR: publicBuildUrl('BINDERY_CRAN_MIRROR').default('https://cloud.r-project.org'),
  /**
   * Where uv downloads a Python the base image lacks (runtime.txt `python-X.Y`): a mirror of
   * python-build-standalone's releases (uv's UV_PYTHON_INSTALL_MIRROR). @defaultValue uv's own
   */
  BINDERY_PYTHON_MIRROR: publicBuildUrl('BINDERY_PYTHON_MIRROR').optional(),
});

/** Bindery's settings, read once from the environment and frozen. */
export interface Config {
  port: number;
  publicUrl: string;
  /** `{session}.sessions.example.org`: sessions on host names of their own; unset shares the origin. */
  sessionHost: string | undefined;
  redisUrl: string;
  /** DOCKER_HOST and what goes with it (src/docker-connection.ts). */
  docker: DockerConnection;
  /** BINDERY_ENGINE: sessions as containers (`docker`) or as Swarm services (`swarm`). */
  engine: 'docker' | 'swarm';
  /** Where built images are named: BINDERY_IMAGE_PREFIX, after `<BINDERY_REGISTRY>/` when that is set. */
  imagePrefix: string;
  baseImage: string;
  registry: string | undefined;
  /** BINDERY_REGISTRY_USERNAME and _PASSWORD; undefined when unset. */
  registryAuth: { username: string; password: string } | undefined;
  /** Garbage collection of built images (src/sessions/prune-images.ts); 0 is no cap. */
  images: { budgetBytes: number; maxCount: number; diskHeadroomBytes: number };
  session: { cpus: number; memoryBytes: number; pidsLimit: number; runtime: 'runc' | 'runsc' };
  idleTimeoutSeconds: number;
  maxAgeSeconds: number;
  /** BINDERY_DOWNLOAD_MAX_SIZE: the session bar's download cap, in bytes before compression. */
  downloadMaxBytes: number;
  quotas: {
    maxSessions: number;
    maxSessionsPerRepo: number;
    /** Sessions one client (clientKey) may run at once; 0 is no cap. */
    maxSessionsPerClient: number;
    launchesPerMinute: number;
    /** Status badges a minute one client may have computed (BINDERY_STATUS_RATE_LIMIT). */
    statusChecksPerMinute: number;
    bannedSpecs: readonly RegExp[];
    allowedSpecs: readonly RegExp[];
  };
  /** API tokens callers present as `Authorization: Bearer …`. */
  apiTokens: readonly string[];
  /** `GHE_PROTOCOL://GHE_HOST`, where `gh` specs live. */
  githubUrl: string;
  githubToken: string | undefined;
  /** The GitHub App, when APP_ID, its private key and WEBHOOK_SECRET are all set. */
  githubApp: GitHubAppConfig | undefined;
  /** Sign-in with GitHub (GITHUB_CLIENT_ID and GITHUB_CLIENT_SECRET); private repositories need it. */
  signIn: { clientId: string; clientSecret: string } | undefined;
  egress: { ports: readonly number[]; allowCidrs: readonly string[] };
  /** LOG_LEVEL and LOG_FORMAT, for src/log/create-log.ts. */
  log: {
    level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
    format: 'json' | 'pretty';
  };
  sandbox: { network: string; optOut: boolean };
  git: { allowedHosts: readonly string[]; cloneTimeoutMs: number; cloneMaxBytes: number };
  build: {
    timeoutMs: number;
    logMaxBytes: number;
    /** Builds one worker runs at once. */
    concurrency: number;
    /** BINDERY_WORKER_STALL_TIMEOUT: how long a dead worker's build waits for another worker. */
    stallTimeoutMs: number;
    network: string | undefined;
    pipIndexUrl: string | undefined;
    pipExtraIndexUrl: string | undefined;
    pipTrustedHost: string | undefined;
    /** Port of the forwarder of indexes with credentials (BINDERY_BUILD_INDEX_PORT). */
    indexPort: number;
    micromambaUrl: string;
    cranMirror: string;
    /** python-build-standalone mirror for kernels on another Python; uv's default when unset. */
    pythonMirror: string | undefined;
  };
}

/** The GitHub App's credentials, under Probot's environment names. */
export interface GitHubAppConfig {
  appId: number;
  privateKey: string;
  webhookSecret: string;
}

/**
 * The GitHub App's settings, or undefined when none of them is set (the app is off). Some
 * but not all set is a mistake, named at start rather than found at the first webhook.
 */
/** GITHUB_CLIENT_ID and GITHUB_CLIENT_SECRET, both or neither. */
function signInConfig(e: z.infer<typeof schema>): Config['signIn'] {
  const { GITHUB_CLIENT_ID: clientId, GITHUB_CLIENT_SECRET: clientSecret } = e;
  if (clientId === undefined && clientSecret === undefined) return undefined;
  if (clientId === undefined || clientSecret === undefined) {
    throw new ConfigError(
      `${clientId === undefined ? 'GITHUB_CLIENT_ID' : 'GITHUB_CLIENT_SECRET'} is missing: sign-in needs both GITHUB_CLIENT_ID and GITHUB_CLIENT_SECRET (the GitHub App's OAuth credentials, from its settings page); unset both to run without sign-in.`,
    );
  }
  return Object.freeze({ clientId, clientSecret });
}

function githubAppConfig(e: z.infer<typeof schema>): GitHubAppConfig | undefined {
  const given = {
    APP_ID: e.APP_ID !== undefined,
    'PRIVATE_KEY or PRIVATE_KEY_PATH': Boolean(e.PRIVATE_KEY ?? e.PRIVATE_KEY_PATH),
    WEBHOOK_SECRET: e.WEBHOOK_SECRET !== undefined,
  };
  const missing = Object.entries(given).filter(([, set]) => !set);
  if (missing.length === 3) return undefined;
  if (missing.length > 0) {
    throw new ConfigError(
      `The GitHub App needs ${missing.map(([name]) => name).join(' and ')} too ` +
        `(from the app's settings page); unset all of APP_ID, PRIVATE_KEY and WEBHOOK_SECRET to run without it.`,
    );
  }
  let privateKey: string;
  try {
    // Probot's own reader: PEM, base64 or `\n`-escaped text, or the file PRIVATE_KEY_PATH names.
    privateKey = getPrivateKey({
      env: { PRIVATE_KEY: e.PRIVATE_KEY, PRIVATE_KEY_PATH: e.PRIVATE_KEY_PATH },
    })!;
  } catch (error) {
    throw new ConfigError(
      `PRIVATE_KEY / PRIVATE_KEY_PATH: ${(error as Error).message.replace(/^\[[^\]]*\] /, '')}`,
    );
  }
  return Object.freeze({
    appId: e.APP_ID!,
    privateKey,
    webhookSecret: e.WEBHOOK_SECRET!,
  });
}

/** Compiles a list of regular expressions, naming the variable when one is not valid. */
function patterns(variable: string, sources: string[]): RegExp[] {
  return sources.map((source) => {
    try {
      return new RegExp(source);
    } catch (error) {
      throw new ConfigError(
        `${variable}: "${source}" is not a regular expression (${(error as Error).message})`,
      );
    }
  });
}

/**
 * BINDERY_SESSION_HOST in lower case, refused when the service's own host name would read as a
 * session's (`<label>.<domain>`): the proxy would then take the service's pages for a session.
 */
function sessionHostFor(pattern: string | undefined, publicUrl: string | undefined) {
  if (pattern === undefined) return undefined;
  const host = pattern.toLowerCase();
  const domain = host.replace(/^\{session\}\./, '').replace(/:\d+$/, '');
  const service = new URL(publicUrl ?? 'http://localhost').hostname.toLowerCase();
  const label = service.endsWith(`.${domain}`) ? service.slice(0, -domain.length - 1) : '';
  if (label && !label.includes('.')) {
    throw new ConfigError(
      `BINDERY_SESSION_HOST: "${pattern}" covers the service's own host ${service} (BINDERY_PUBLIC_URL); put sessions under a domain of their own, like {session}.sessions.${domain}`,
    );
  }
  return host;
}

/**
 * Where images are named: `<registry>/<prefix>`, or the prefix as it is when it names the
 * registry already (BinderHub's image_prefix does, e.g. `registry.example.org/binder/r2d-`).
 */
function registryPrefix(registry: string | undefined, prefix: string): string {
  if (registry === undefined || prefix.startsWith(`${registry}/`)) return prefix;
  return `${registry}/${prefix}`;
}

/** Registry credentials: both of BINDERY_REGISTRY_USERNAME and _PASSWORD, with the registry, or none. */
function registryAuthFor(e: {
  BINDERY_REGISTRY?: string;
  BINDERY_REGISTRY_USERNAME?: string;
  BINDERY_REGISTRY_PASSWORD?: string;
}): Config['registryAuth'] {
  const { BINDERY_REGISTRY_USERNAME: username, BINDERY_REGISTRY_PASSWORD: password } = e;
  if (username === undefined && password === undefined) return undefined;
  if (username === undefined || password === undefined) {
    throw new ConfigError(
      'BINDERY_REGISTRY_USERNAME and BINDERY_REGISTRY_PASSWORD go together: set both, or neither for a registry without sign-in.',
    );
  }
  if (!e.BINDERY_REGISTRY) {
    throw new ConfigError(
      'BINDERY_REGISTRY_USERNAME is set without BINDERY_REGISTRY: set the registry host they sign in to.',
    );
  }
  return Object.freeze({ username, password });
}

/**
 * Reads the configuration from `env` (the only reader of `process.env` in Bindery).
 * Throws a ConfigError naming each variable that is wrong and why.
 */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const present = Object.fromEntries(
    Object.entries(env).filter(([name, value]) => name in schema.shape && value !== ''),
  );
  const parsed = schema.safeParse(present);
  if (!parsed.success) {
    const problems = parsed.error.issues.map(
      (issue) => `${issue.path.join('.')}: ${issue.message}`,
    );
    throw new ConfigError(`Bindery's environment is not valid:\n  ${problems.join('\n  ')}`);
  }
  const e = parsed.data;
  const ports = e.BINDERY_EGRESS_PORTS.map(Number);
  if (ports.some((port) => !Number.isInteger(port) || port < 1 || port > 65535)) {
    throw new ConfigError(
      `BINDERY_EGRESS_PORTS: "${e.BINDERY_EGRESS_PORTS.join(',')}" must be TCP ports`,
    );
  }
  if (e.BINDERY_ENGINE === 'swarm' && e.BINDERY_RUNTIME === 'runsc') {
    throw new ConfigError(
      'BINDERY_RUNTIME=runsc cannot be asked of Swarm (a service cannot choose its runtime): set "default-runtime": "runsc" in each node\'s /etc/docker/daemon.json and leave BINDERY_RUNTIME unset.',
    );
  }
  return Object.freeze({
    port: e.PORT,
    publicUrl: (e.BINDERY_PUBLIC_URL ?? `http://localhost:${e.PORT}`).replace(/\/+$/, ''),
    sessionHost: sessionHostFor(e.BINDERY_SESSION_HOST, e.BINDERY_PUBLIC_URL),
    redisUrl: e.REDIS_URL,
    docker: dockerConnection(e),
    engine: e.BINDERY_ENGINE,
    imagePrefix: registryPrefix(e.BINDERY_REGISTRY, e.BINDERY_IMAGE_PREFIX),
    baseImage: e.BINDERY_BASE_IMAGE,
    registry: e.BINDERY_REGISTRY,
    registryAuth: registryAuthFor(e),
    images: Object.freeze({
      budgetBytes: e.BINDERY_IMAGE_BUDGET,
      maxCount: e.BINDERY_IMAGE_MAX_COUNT,
      diskHeadroomBytes: e.BINDERY_DISK_HEADROOM,
    }),
    session: Object.freeze({
      cpus: e.BINDERY_SESSION_CPUS,
      memoryBytes: e.BINDERY_SESSION_MEMORY,
      pidsLimit: e.BINDERY_PIDS_LIMIT,
      runtime: e.BINDERY_RUNTIME,
    }),
    idleTimeoutSeconds: e.BINDERY_IDLE_TIMEOUT,
    maxAgeSeconds: e.BINDERY_MAX_AGE,
    downloadMaxBytes: e.BINDERY_DOWNLOAD_MAX_SIZE,
    quotas: Object.freeze({
      maxSessions: e.BINDERY_MAX_SESSIONS,
      maxSessionsPerRepo: e.BINDERY_MAX_SESSIONS_PER_REPO,
      maxSessionsPerClient: e.BINDERY_MAX_SESSIONS_PER_CLIENT,
      launchesPerMinute: e.BINDERY_LAUNCH_RATE_LIMIT,
      statusChecksPerMinute: e.BINDERY_STATUS_RATE_LIMIT,
      bannedSpecs: Object.freeze(patterns('BINDERY_BANNED_SPECS', e.BINDERY_BANNED_SPECS)),
      allowedSpecs: Object.freeze(patterns('BINDERY_ALLOWED_SPECS', e.BINDERY_ALLOWED_SPECS)),
    }),
    apiTokens: Object.freeze(e.BINDERY_API_TOKENS),
    githubUrl: `${e.GHE_PROTOCOL}://${e.GHE_HOST}`,
    githubToken: e.GITHUB_TOKEN,
    githubApp: githubAppConfig(e),
    signIn: signInConfig(e),
    log: Object.freeze({
      level: e.LOG_LEVEL,
      format: e.LOG_FORMAT ?? (e.NODE_ENV === 'production' ? 'json' : 'pretty'),
    }),
    sandbox: Object.freeze({
      network: e.BINDERY_SESSION_NETWORK,
      optOut: e.BINDERY_SANDBOX_OPTOUT === '1',
    }),
    egress: Object.freeze({
      ports: Object.freeze(ports),
      allowCidrs: Object.freeze(e.BINDERY_EGRESS_ALLOW_CIDRS),
    }),
    git: Object.freeze({
      allowedHosts: Object.freeze(e.BINDERY_GIT_ALLOWED_HOSTS.map((host) => host.toLowerCase())),
      cloneTimeoutMs: e.BINDERY_CLONE_TIMEOUT * 1000,
      cloneMaxBytes: e.BINDERY_CLONE_MAX_SIZE,
    }),
    build: Object.freeze({
      timeoutMs: e.BINDERY_BUILD_TIMEOUT * 1000,
      logMaxBytes: e.BINDERY_BUILD_LOG_MAX,
      concurrency: e.BINDERY_BUILD_CONCURRENCY,
      stallTimeoutMs: e.BINDERY_WORKER_STALL_TIMEOUT * 1000,
      network: e.BINDERY_BUILD_NETWORK,
      pipIndexUrl: e.PIP_INDEX_URL,
      pipExtraIndexUrl: e.PIP_EXTRA_INDEX_URL,
      pipTrustedHost: e.PIP_TRUSTED_HOST,
      indexPort: e.BINDERY_BUILD_INDEX_PORT,
      micromambaUrl: e.BINDERY_MICROMAMBA_URL,
      cranMirror: e.BINDERY_CRAN_MIRROR.replace(/\/+$/, ''),
      pythonMirror: e.BINDERY_PYTHON_MIRROR?.replace(/\/+$/, ''),
    }),
  });
}
