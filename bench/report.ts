import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { format, resolveConfig } from 'prettier';

const exec = promisify(execFile);
const BENCHMARKS = join(import.meta.dirname, '..', 'BENCHMARKS.md');

/** The value below which `p` percent of `values` fall (nearest rank). */
export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export const median = (values: number[]) => percentile(values, 50);

/** What the figures were measured on, for the line above each table. */
export async function machine(): Promise<string> {
  const docker = (await exec('docker', ['version', '-f', '{{.Server.Version}}'])).stdout.trim();
  const storage = (await exec('docker', ['info', '-f', '{{.Driver}}'])).stdout.trim();
  return `${cpus().length} × ${cpus()[0]?.model.trim()}, ${Math.round(totalmem() / 2 ** 30)} GiB, Docker ${docker} (${storage}), Node ${process.version}`;
}

/**
 * Replaces the part of BENCHMARKS.md between `<!-- bench:<name>:start -->` and its end marker
 * with `body`, or appends a `## <heading>` section with `about` and the markers.
 */
export async function writeSection(
  name: string,
  heading: string,
  about: string,
  body: string,
): Promise<string> {
  const section = `<!-- bench:${name}:start -->\n${body}\n<!-- bench:${name}:end -->`;
  const current = await readFile(BENCHMARKS, 'utf8').catch(() => '# Benchmarks\n');
  const markers = new RegExp(`<!-- bench:${name}:start -->[\\s\\S]*<!-- bench:${name}:end -->`);
  const written = markers.test(current)
    ? current.replace(markers, section)
    : `${current.trimEnd()}\n\n## ${heading}\n\n${about}\n\n${section}\n`;
  // Formatted as `npm run lint` checks it, so a run leaves nothing to tidy by hand.
  await writeFile(
    BENCHMARKS,
    await format(written, { ...(await resolveConfig(BENCHMARKS)), filepath: BENCHMARKS }),
  );
  return section;
}
