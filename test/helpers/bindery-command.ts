// The compiled `bindery` command (bin/bindery.js) run as a person would, for tests of the real
// command against real Docker and Redis.
import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);
const ROOT = join(import.meta.dirname, '../..');
const BINDERY = join(ROOT, 'bin/bindery.js');
/** The test runner's NODE_OPTIONS (jest's VM modules) are not the command's. */
const commandEnv = (env: Record<string, string>) => ({ ...process.env, NODE_OPTIONS: '', ...env });

/** Compiles today's src/ and workers/ into dist/ (`npm run build`, about a second). */
export async function compileBindery(): Promise<void> {
  await exec('npm', ['run', 'build', '--silent'], { cwd: ROOT });
}

/** Runs `bindery <args>` to its end with `env` added; never throws, returns what it printed. */
export async function runBindery(env: Record<string, string>, ...args: string[]) {
  try {
    const { stdout, stderr } = await exec(BINDERY, args, { cwd: ROOT, env: commandEnv(env) });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

/** Starts `bindery <args>` and keeps it running; its output gathers in `output.out` and `.err`. */
export function startBindery(env: Record<string, string>, ...args: string[]) {
  const child: ChildProcessWithoutNullStreams = spawn(BINDERY, args, {
    cwd: ROOT,
    env: commandEnv(env),
  });
  const output = { out: '', err: '' };
  child.stdout.on('data', (chunk: Buffer) => (output.out += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output.err += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  return { child, output, exited };
}
