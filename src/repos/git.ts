import { spawn } from 'node:child_process';
import { StringDecoder } from 'node:string_decoder';

/**
 * Environment for every git command Bindery runs on someone else's repository: never prompt
 * for credentials, speak only http(s) and git (no ssh, file or ext helpers), and ignore the
 * host's own git configuration (an insteadOf rule there must not redirect a clone).
 */
const SAFE_GIT_ENV = {
  GIT_TERMINAL_PROMPT: '0',
  GIT_ASKPASS: 'echo',
  GIT_ALLOW_PROTOCOL: 'http:https:git',
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_LFS_SKIP_SMUDGE: '1',
};

/** Redirects could lead a vetted host's clone to a private address, so git follows none. */
const SAFE_GIT_CONFIG = ['-c', 'http.followRedirects=false', '-c', 'protocol.version=2'];

export interface GitResult {
  stdout: string;
  stderr: string;
}

/** How much a git command may print before it is stopped, unless told otherwise: 4 MiB. */
export const DEFAULT_MAX_OUTPUT_BYTES = 4 * 2 ** 20;

export class GitCommandError extends Error {
  constructor(
    readonly args: string[],
    readonly stderr: string,
    readonly timedOut: boolean,
    /** Set when git printed more than its cap and was stopped for it. */
    readonly outputCap?: number,
  ) {
    super(
      outputCap === undefined
        ? `git ${args[0]} failed: ${lastLine(stderr) || (timedOut ? 'timed out' : 'no output')}`
        : `git ${args[0]} printed more than ${outputCap} bytes and was stopped.`,
    );
    this.name = this.constructor.name;
  }
}

/** The last non-empty line of git's stderr, which is where it says what went wrong. */
export function lastLine(text: string): string {
  const lines = text
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);
  return lines.at(-1) ?? '';
}

/**
 * The environment that hands `config` to git as if given with `-c key=value`
 * (`GIT_CONFIG_COUNT`, `GIT_CONFIG_KEY_<n>`, `GIT_CONFIG_VALUE_<n>`, git 2.31 and later), so
 * that a secret value such as an `http.extraHeader` never appears in a command line, which
 * every user of the machine can read in `ps`. Git's helpers (git-remote-http) inherit it.
 * See https://git-scm.com/docs/git-config#Documentation/git-config.txt-GITCONFIGCOUNT
 */
export function gitConfigEnv(config: Record<string, string>): Record<string, string> {
  const entries = Object.entries(config);
  if (entries.length === 0) return {};
  const env: Record<string, string> = { GIT_CONFIG_COUNT: String(entries.length) };
  entries.forEach(([key, value], index) => {
    // Node refuses an environment with a NUL byte, and its error quotes the value: say which
    // key instead, so that a secret value is never repeated in an error message.
    if (!key || key.includes('\0') || value.includes('\0')) {
      throw new TypeError(
        `git config "${key.replaceAll('\0', '')}" has an empty key or a NUL byte.`,
      );
    }
    env[`GIT_CONFIG_KEY_${index}`] = key;
    env[`GIT_CONFIG_VALUE_${index}`] = value;
  });
  return env;
}

export interface RunGitOptions {
  cwd?: string;
  timeoutMs: number;
  signal?: AbortSignal;
  config?: Record<string, string>;
  /**
   * Stop git, its whole process group, once its stdout passes this many bytes: a repository
   * chooses how much its ref listing or tree listing says, and a few KiB of objects can list
   * billions of files. @defaultValue DEFAULT_MAX_OUTPUT_BYTES
   */
  maxOutputBytes?: number;
  /** Receives stdout as it streams, instead of collecting it for the result; the cap holds. */
  onStdout?: (text: string) => void;
  /**
   * The most memory git (and its helpers) may allocate (RLIMIT_DATA, set by the shell's
   * `ulimit -d` before it execs git): what a host sends before git prints anything, a ref
   * listing of millions, is held in git's memory where no output cap sees it.
   */
  maxMemoryBytes?: number;
}

/** Git's words when an allocation failed: it ran into maxMemoryBytes. */
export const OUT_OF_MEMORY = /out of memory|cannot allocate memory|[mc]alloc failed/i;

/**
 * Runs git with the safe environment; rejects with GitCommandError on failure, on timeout, or
 * when its output passes the cap (counted as it streams, never held past it).
 * `config` adds git configuration through the environment (see gitConfigEnv), for values that
 * must stay out of the command line; git reads the safe `-c` settings above after it, so they win.
 */
export function runGit(args: string[], options: RunGitOptions): Promise<GitResult> {
  const maxOutputBytes = options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
  return new Promise((resolve, reject) => {
    // Its own process group: git runs helpers (git-remote-http) that must die with it.
    const gitArgs = [...SAFE_GIT_CONFIG, ...args];
    // With a memory limit, the shell sets it (in KiB) and then becomes git: same pid, same group.
    const [file, argv]: [string, string[]] =
      options.maxMemoryBytes === undefined
        ? ['git', gitArgs]
        : [
            '/bin/sh',
            [
              '-c',
              'ulimit -d "$0" && exec git "$@"',
              String(Math.ceil(options.maxMemoryBytes / 1024)),
              ...gitArgs,
            ],
          ];
    const child = spawn(file, argv, {
      cwd: options.cwd,
      env: { PATH: process.env.PATH, ...SAFE_GIT_ENV, ...gitConfigEnv(options.config ?? {}) },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let stdout = '';
    let stdoutBytes = 0;
    let stderr = '';
    let timedOut = false;
    let overCap = false;
    const decoder = new StringDecoder('utf8');
    const killGroup = () => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // Already gone.
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, options.timeoutMs);
    options.signal?.addEventListener('abort', killGroup, { once: true });
    child.stdout.on('data', (chunk: Buffer) => {
      if (overCap) return;
      stdoutBytes += chunk.length;
      if (stdoutBytes > maxOutputBytes) {
        overCap = true;
        killGroup();
        return;
      }
      const text = decoder.write(chunk);
      if (options.onStdout) options.onStdout(text);
      else stdout += text;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      // Keep the tail only: progress output of a long fetch is large and useless.
      stderr = (stderr + chunk).slice(-16_384);
    });
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new GitCommandError(args, error.message, false));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', killGroup);
      if (overCap) {
        reject(new GitCommandError(args, stderr, false, maxOutputBytes));
        return;
      }
      const rest = decoder.end();
      if (options.onStdout) {
        if (rest) options.onStdout(rest);
      } else stdout += rest;
      if (code === 0 && !timedOut) resolve({ stdout, stderr });
      else reject(new GitCommandError(args, stderr, timedOut));
    });
  });
}
