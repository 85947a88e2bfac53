import { spawn } from 'node:child_process';

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

export class GitCommandError extends Error {
  constructor(
    readonly args: string[],
    readonly stderr: string,
    readonly timedOut: boolean,
  ) {
    super(`git ${args[0]} failed: ${lastLine(stderr) || (timedOut ? 'timed out' : 'no output')}`);
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

/** Runs git with the safe environment; rejects with GitCommandError on failure or timeout. */
export function runGit(
  args: string[],
  options: { cwd?: string; timeoutMs: number; signal?: AbortSignal },
): Promise<GitResult> {
  return new Promise((resolve, reject) => {
    // Its own process group: git runs helpers (git-remote-http) that must die with it.
    const child = spawn('git', [...SAFE_GIT_CONFIG, ...args], {
      cwd: options.cwd,
      env: { PATH: process.env.PATH, ...SAFE_GIT_ENV },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
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
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
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
      if (code === 0 && !timedOut) resolve({ stdout, stderr });
      else reject(new GitCommandError(args, stderr, timedOut));
    });
  });
}
