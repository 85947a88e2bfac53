/**
 * Set-up on a machine whose package index cannot be reached: building the base image stops
 * with one sentence saying why and what to set, before anything is built.
 */
import { expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const BOOTSTRAP = join(import.meta.dirname, '../../deploy/base-image/bootstrap.sh');

test('without a reachable index, bootstrap.sh says why in one sentence and builds nothing', async () => {
  const wheelhouse = await mkdtemp(join(tmpdir(), 'bindery-wheelhouse-'));
  const image = `bindery-test/base-offline:${process.pid}`;
  try {
    const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>(
      (resolve) => {
        execFile(
          BOOTSTRAP,
          [image],
          {
            env: {
              ...process.env,
              // Port 9 on loopback refuses at once; no retries, no other index or local wheels.
              PIP_INDEX_URL: 'http://127.0.0.1:9/simple',
              PIP_EXTRA_INDEX_URL: '',
              PIP_FIND_LINKS: '',
              PIP_RETRIES: '0',
              PIP_CONFIG_FILE: '/dev/null',
              BINDERY_WHEELHOUSE: wheelhouse,
              BINDERY_REBUILD_BASE: '1',
            },
          },
          (error, _stdout, stderr) =>
            resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stderr }),
        );
      },
    );
    expect(code).toBe(1);
    expect(stderr.trim().split('\n').at(-1)).toMatch(
      /^The base image needs the Python packages pinned in .*requirements\.txt, and the host's pip could not download them \(above\): set PIP_INDEX_URL to a reachable index or mirror, or BINDERY_BASE_IMAGE to an image built elsewhere\.$/,
    );
    await expect(
      new Promise((resolve, reject) =>
        execFile('docker', ['image', 'inspect', image], (error) =>
          error ? resolve('absent') : reject(new Error('built')),
        ),
      ),
    ).resolves.toBe('absent');
  } finally {
    await rm(wheelhouse, { recursive: true, force: true });
  }
}, 120_000);
