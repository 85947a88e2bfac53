import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Builder } from '../../src/build/builder.js';
import { loadConfig, type Config } from '../../src/config.js';
import { DockerEngine } from '../../src/engine/docker-engine.js';
import { parseSource } from '../../src/repos/repo-spec.js';
import {
  startSession,
  waitForJupyter,
  type StartedSession,
} from '../../src/sessions/start-session.js';
import { startDefaultSession, type DefaultSession } from '../helpers/default-session.js';

const exec = promisify(execFile);
let started: DefaultSession;
let config: Config;
let engine: DockerEngine;
let session: StartedSession;

beforeAll(async () => {
  started = await startDefaultSession('j');
  ({ config, engine, session } = started);
}, 300_000);

afterAll(async () => {
  await started?.remove();
}, 60_000);

/** /proc/<pid>/status of the session's Jupyter process (not its init), read on the host. */
async function jupyterProcessStatus(): Promise<string> {
  const { stdout } = await exec('docker', ['top', session.container.id, '-o', 'pid,args']);
  const line = stdout.split('\n').find((row) => /jupyter-lab/.test(row));
  expect(line).toBeDefined();
  return readFile(`/proc/${line!.trim().split(/\s+/)[0]}/status`, 'utf8');
}

describe('a session from a built image', () => {
  test('published, the engine gives its host port as the address Jupyter answers /api at', async () => {
    const { url, name } = session.container;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const listed = (await engine.listSessions()).find((container) => container.name === name);
    expect(listed?.url).toBe(url);
    const api = await fetch(`${url}/user/${name}/api`);
    expect(api.status).toBe(200);
    expect(await api.json()).toEqual({ version: expect.stringMatching(/^\d+\.\d+/) });
  }, 30_000);

  test('answers api/status with the token and refuses it without', async () => {
    const status = await fetch(`${session.url}api/status?token=${session.token}`);
    expect(status.status).toBe(200);
    expect(await status.json()).toMatchObject({ kernels: 0 });
    expect((await fetch(`${session.url}api/status`)).status).toBe(403);
  }, 30_000);

  test('serves JupyterLab, Notebook 7 and the repository at /user/<name>/', async () => {
    expect(session.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/user\/bindery-[0-9a-f]{12}\/$/);
    const lab = await fetch(`${session.url}lab?token=${session.token}`);
    expect(lab.status).toBe(200);
    expect(await lab.text()).toContain('<title>JupyterLab</title>');
    const tree = await fetch(`${session.url}tree?token=${session.token}`);
    expect(tree.status).toBe(200);
    expect(await tree.text()).toContain('"appName": "Jupyter Notebook"');
    const contents = await fetch(`${session.url}api/contents?token=${session.token}`);
    const names = ((await contents.json()) as { content: { name: string }[] }).content.map(
      (c) => c.name,
    );
    expect(names).toEqual(expect.arrayContaining(['index.ipynb', 'verify']));
  }, 30_000);

  test('runs Jupyter as uid 1000 with no capabilities and no new privileges', async () => {
    const status = await jupyterProcessStatus();
    expect(status).toMatch(/^Uid:\s+1000\s+1000\s+1000\s+1000$/m);
    expect(status).toMatch(/^Gid:\s+1000\s+1000\s+1000\s+1000$/m);
    expect(status).toMatch(/^CapEff:\s+0+$/m);
    expect(status).toMatch(/^CapBnd:\s+0+$/m);
    expect(status).toMatch(/^NoNewPrivs:\s+1$/m);
  }, 30_000);

  test('has the configured limits and the labels Bindery finds sessions by', async () => {
    const { stdout } = await exec('docker', ['inspect', session.container.id]);
    const [info] = JSON.parse(stdout) as [
      { HostConfig: Record<string, unknown>; Config: { Labels: Record<string, string> } },
    ];
    expect(info.HostConfig).toMatchObject({
      NanoCpus: 1e9,
      Memory: 2 ** 30,
      MemorySwap: 2 ** 30,
      PidsLimit: config.session.pidsLimit,
    });
    expect(info.Config.Labels).toMatchObject({
      'bindery.kind': 'session',
      'bindery.session': session.container.name,
      'bindery.repo': expect.stringMatching(/^local\/.*fixtures\/repos\/default$/),
    });
  }, 30_000);
});

describe("the launcher on an operator's base image without JupyterLab", () => {
  const nolab = `bindery-test/nolab:${randomBytes(4).toString('hex')}`;
  let image: string | undefined;
  let plain: StartedSession | undefined;

  beforeAll(async () => {
    // The base image less JupyterLab's command: Notebook 7 alone, as some operators' images are.
    await new Promise<void>((resolve, reject) => {
      const build = execFile('docker', ['build', '-q', '-t', nolab, '-'], (error) =>
        error ? reject(error) : resolve(),
      );
      build.stdin!.end(`FROM ${config.baseImage}\nRUN rm /srv/venv/bin/jupyter-lab\n`);
    });
    const spec = parseSource(join(import.meta.dirname, '../fixtures/repos/default'));
    ({ imageName: image } = await new Builder({
      engine,
      config: loadConfig({
        BINDERY_IMAGE_PREFIX: `${config.imagePrefix}nolab-`,
        BINDERY_BASE_IMAGE: nolab,
      }),
    }).build(spec));
    plain = await startSession({
      engine,
      config,
      imageName: image,
      repoLabel: spec.repoLabel,
      publishOn: '127.0.0.1',
    });
    await waitForJupyter(plain.url, plain.token);
  }, 300_000);

  afterAll(async () => {
    if (plain) await engine.removeContainer(plain.container.id);
    if (image) await engine.removeImage(image);
    await engine.removeImage(nolab);
  }, 60_000);

  test('starts Notebook 7 at the session base URL instead', async () => {
    const { stdout } = await exec('docker', ['top', plain!.container.id, '-o', 'pid,args']);
    expect(stdout).toMatch(/jupyter-notebook .*--ServerApp\.base_url=\/user\/bindery-/);
    const tree = await fetch(`${plain!.url}tree?token=${plain!.token}`);
    expect(tree.status).toBe(200);
    expect(await tree.text()).toContain('"appName": "Jupyter Notebook"');
  }, 30_000);
});
