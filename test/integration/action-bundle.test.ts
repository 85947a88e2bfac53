import { afterAll, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);
const ROOT = join(import.meta.dirname, '../..');
let dir: string | undefined;

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('the committed action/dist/index.js is what `npm run build:action` builds from action/src', async () => {
  const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as {
    scripts: Record<string, string>;
  };
  const script = pkg.scripts['build:action']!;
  expect(script).toContain('--outfile=action/dist/index.js');
  dir = await mkdtemp(join(tmpdir(), 'bindery-bundle-'));
  const fresh = join(dir, 'index.js');
  const [command, ...args] = script
    .replace('--outfile=action/dist/index.js', `--outfile=${fresh}`)
    .split(' ');
  await exec(join(ROOT, 'node_modules/.bin', command!), args, { cwd: ROOT });
  const committed = await readFile(join(ROOT, 'action/dist/index.js'), 'utf8');
  expect(committed).toBe(await readFile(fresh, 'utf8'));
}, 60_000);
