/**
 * How long the `bindery` command takes, start to exit, as a person types it: `--help`,
 * `--version`, and `build` of a repository whose image already exists, measured with hyperfine
 * (`apt-get install hyperfine`) RUNS times each after 3 warm-up runs; median, mean ± σ, range,
 * against the targets (300 ms; 500 ms for the build), with the machine's load before and after.
 * Compiles the command first (`npm run build`, into dist/); prints the figures, writes nothing.
 *
 *   npm run bench:cli            (RUNS=30 to change the count, 5 to 200)
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DockerEngine } from '../src/engine/docker-engine.js';
import { machine } from './report.js';

const exec = promisify(execFile);
const ROOT = join(import.meta.dirname, '..');
const RUNS = Math.min(Math.max(Number(process.env.RUNS ?? 20) || 20, 5), 200);
const FIXTURE = 'test/fixtures/repos/default';

interface HyperfineResult {
  command: string;
  mean: number;
  stddev: number;
  median: number;
  min: number;
  max: number;
}

const ms = (seconds: number) => `${(seconds * 1000).toFixed(0)} ms`;
const load = () =>
  loadavg()
    .map((value) => value.toFixed(2))
    .join(' ');

async function main(): Promise<void> {
  await exec('hyperfine', ['--version']).catch(() => {
    throw new Error('hyperfine is not installed: apt-get install -y hyperfine');
  });
  // Today's src/, compiled as set-up compiles it (about a second).
  await exec('npm', ['run', 'build', '--silent'], { cwd: ROOT });
  const prefix = `bindery-bench/cli${randomBytes(3).toString('hex')}-`;
  const env = { ...process.env, BINDERY_IMAGE_PREFIX: prefix };
  const bindery = join(ROOT, 'bin/bindery.js');
  // The image the measured builds find.
  const { stdout } = await exec(bindery, ['build', FIXTURE], { cwd: ROOT, env });
  const image = stdout.trim().split('\n').at(-1)!;
  const scratch = await mkdtemp(join(tmpdir(), 'bindery-bench-cli-'));
  const targets: Record<string, number> = {
    [`${bindery} --help`]: 0.3,
    [`${bindery} --version`]: 0.3,
    [`${bindery} build ${FIXTURE}`]: 0.5,
  };
  const before = load();
  try {
    const json = join(scratch, 'hyperfine.json');
    await exec(
      'hyperfine',
      [
        '-N',
        '--warmup',
        '3',
        '--runs',
        String(RUNS),
        '--export-json',
        json,
        ...Object.keys(targets),
      ],
      { cwd: ROOT, env },
    );
    const { results } = JSON.parse(await readFile(json, 'utf8')) as { results: HyperfineResult[] };
    console.log(
      `${await machine()}; ${RUNS} runs each; load average ${before} before, ${load()} after`,
    );
    console.log('| command | median | mean ± σ | min … max | target |');
    console.log('|---|---|---|---|---|');
    for (const result of results) {
      const target = targets[result.command]!;
      const command = result.command.replace(`${ROOT}/`, '').replace('bin/bindery.js', 'bindery');
      console.log(
        `| \`${command}\` | ${ms(result.median)} | ${ms(result.mean)} ± ${ms(result.stddev)} | ${ms(result.min)} … ${ms(result.max)} | < ${ms(target)} ${result.median < target ? 'met' : 'MISSED'} |`,
      );
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
    await new DockerEngine().removeImage(image).catch(() => {});
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
