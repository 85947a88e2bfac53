/**
 * Base image benchmark: deploy/base-image/bootstrap.sh builds the base image with every layer
 * anew (Debian's packages from the mirror, the notebook environment from the wheelhouse the
 * host's pip keeps) under a throwaway tag, once; its time and size go to BENCHMARKS.md. The
 * root filesystem and the wheelhouse are reused as a machine's second build would.
 *
 *   npm run bench:base
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { machine, writeSection } from './report.js';

const exec = promisify(execFile);

async function main(): Promise<void> {
  const tag = `bindery-bench/base:${randomBytes(4).toString('hex')}`;
  const started = performance.now();
  await exec(join(import.meta.dirname, '../deploy/base-image/bootstrap.sh'), [tag], {
    env: { ...process.env, BINDERY_BASE_NO_CACHE: '1', BINDERY_REBUILD_BASE: '1' },
    maxBuffer: 64 * 2 ** 20,
  });
  const seconds = (performance.now() - started) / 1000;
  const size = Number((await exec('docker', ['image', 'inspect', '-f', '{{.Size}}', tag])).stdout);
  const venv = (await exec('docker', ['run', '--rm', tag, 'du', '-sm', '/srv/venv'])).stdout.split(
    '\t',
  )[0];
  await exec('docker', ['image', 'rm', tag]);
  const body = [
    `Measured ${new Date().toISOString().slice(0, 10)} on ${await machine()}.`,
    '`npm run bench:base`, one build with `--no-cache`.',
    '',
    '| base image | value |',
    '|---|---|',
    `| build time (apt packages, then the venv from the wheelhouse) | ${Math.round(seconds)} s |`,
    `| image size | ${(size / 2 ** 30).toFixed(2)} GiB |`,
    `| of which the notebook environment (/srv/venv) | ${venv} MiB |`,
  ].join('\n');
  console.log(
    await writeSection(
      'base',
      'Base image',
      '`bench/base-image.ts` builds `deploy/base-image` with every layer anew: Debian bookworm with build-essential, Node.js and the en_US.UTF-8 locale, then the notebook environment (JupyterLab 4, Notebook 7, ipykernel and the rest of `requirements.txt`) installed from the wheelhouse the host filled. The debootstrapped root filesystem and the wheelhouse are reused, as on any build after the first.',
      body,
    ),
  );
}

await main();
