import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Builder } from '../../src/build/builder.js';
import type { BuildEvent } from '../../src/build-event.js';
import { loadConfig } from '../../src/config.js';
import { DockerEngine } from '../../src/engine/docker-engine.js';
import { parseSource } from '../../src/repos/repo-spec.js';
import { readEventStream, type StreamEvent } from '../helpers/event-stream.js';
import { startGitServer, type GitServer } from '../helpers/git-server.js';
import { runInKernel } from '../helpers/jupyter-kernel.js';
import { startLocalRegistry, type LocalRegistry } from '../helpers/local-registry.js';
import { startTestService, type TestService } from '../helpers/test-service.js';
import { waitFor } from '../helpers/wait-for.js';

const exec = promisify(execFile);
const FIXTURE = join(import.meta.dirname, '../fixtures/repos/default');
const engine = new DockerEngine();
const TOKEN = 'registry-test-token';
/** The registry wants a sign-in: pushes, lookups and pulls all carry these. */
const AUTH = { username: 'bindery', password: randomBytes(12).toString('hex') };

const phases = (events: StreamEvent[]) =>
  events.map((event) => event.phase).filter((phase, i, all) => phase !== all[i - 1]);
/** `repository` and `tag` of `host/repository:tag`. */
const parts = (image: string, host: string) => {
  const [repository = '', tag = ''] = image.slice(host.length + 1).split(':');
  return { repository, tag };
};

let registry: LocalRegistry;
let git: GitServer;
let repo: { url: string; sha: string };
let service: TestService;
let buildUrl: string;
let imageName = '';

beforeAll(async () => {
  registry = await startLocalRegistry({ auth: AUTH });
  git = await startGitServer();
  repo = await git.publish('registry-demo', FIXTURE);
  service = await startTestService('rg', {
    BINDERY_REGISTRY: registry.host,
    BINDERY_API_TOKENS: TOKEN,
    BINDERY_REGISTRY_USERNAME: AUTH.username,
    BINDERY_REGISTRY_PASSWORD: AUTH.password,
  });
  buildUrl = `${service.url}/build/git/${encodeURIComponent(repo.url)}/HEAD`;
}, 120_000);

afterAll(async () => {
  await service?.remove();
  await registry?.close();
  await git?.close();
}, 120_000);

describe('with BINDERY_REGISTRY set', () => {
  test('a build pushes its image: pushing comes before built, and the registry lists the tag', async () => {
    const { status, events } = await readEventStream(`${buildUrl}?build_only=true`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(status).toBe(200);
    expect(phases(events)).toEqual([
      'waiting',
      'fetching',
      'building',
      'pushing',
      'built',
      'ready',
    ]);
    imageName = String(events.at(-1)!.imageName);
    // Named under the registry, so that any host that pulls it knows where from.
    expect(imageName.startsWith(`${registry.host}/${service.prefix}`)).toBe(true);
    expect(imageName.endsWith(`:${repo.sha}`)).toBe(true);

    // BinderHub's shape: the last pushing event says so, with each layer's state.
    const pushing = events.filter((event) => event.phase === 'pushing');
    expect(pushing.at(-1)).toMatchObject({ message: `Successfully pushed ${imageName}\n` });
    const layers = Object.values(pushing.at(-1)!.progress as Record<string, unknown>);
    expect(layers.length).toBeGreaterThan(0);
    expect(layers.every((state) => state === 'Pushed' || state === 'Layer already exists')).toBe(
      true,
    );

    const { repository, tag } = parts(imageName, registry.host);
    expect(await registry.tags(repository)).toEqual([tag]);
    // The sign-in went to Docker in a header, never into the log.
    expect(JSON.stringify(events)).not.toContain(AUTH.password);
    // The build's log page takes a name with the registry's port in it.
    const logPage = await fetch(`${service.url}/logs/${imageName}`);
    expect(logPage.status).toBe(200);
    expect(await logPage.text()).toContain(`Successfully pushed ${imageName}`);
  }, 300_000);

  test('a host without the image pulls it instead of building, and its session runs', async () => {
    expect(imageName).not.toBe('');
    await exec('docker', ['rmi', imageName]);
    expect(await engine.imageExists(imageName)).toBe(false);
    // The live badge counts the registry's copy as built.
    const badgeUrl = `${service.url}/status/git/${encodeURIComponent(repo.url)}/HEAD.svg`;
    expect(await (await fetch(badgeUrl)).text()).toContain('binder: built');

    const { events } = await readEventStream(buildUrl);
    expect(phases(events)).toEqual(['built', 'launching', 'ready']);
    expect(events[0]).toMatchObject({ message: 'Found built image, launching...\n' });
    const ready = events.at(-1)!;
    expect(ready.image).toBe(imageName);
    // Pulled, not built: Docker records the registry's digest of what it pulled.
    expect(await engine.inspectImage(imageName)).toMatchObject({ fromRegistry: true });

    const cell = await runInKernel(String(ready.url), String(ready.token), 'print(6 * 7)');
    expect(cell).toMatchObject({ status: 'ok', output: '42\n' });
  }, 240_000);

  test('with the registry stopped, /health is 503 naming it, and a launch that needs it fails saying so', async () => {
    await registry.stop();
    let body: { ok: boolean; checks: { service: string; ok: boolean; message?: string }[] };
    await waitFor(
      async () => {
        const response = await fetch(`${service.url}/health`);
        body = (await response.json()) as typeof body;
        return response.status === 503;
      },
      '/health to answer 503',
      20_000,
    );
    expect(body!.ok).toBe(false);
    expect(body!.checks.find((check) => check.service === 'Registry')).toMatchObject({
      ok: false,
      message: expect.stringContaining(`The registry ${registry.host}`),
    });
    expect(body!.checks.find((check) => check.service === 'Docker')).toMatchObject({ ok: true });

    // The image is gone from this host (the session's container keeps its layers by id).
    await engine.removeImage(imageName);
    const { events } = await readEventStream(buildUrl);
    expect(events.at(-1)).toMatchObject({
      phase: 'failed',
      status_code: 503,
      message: expect.stringContaining(`The registry ${registry.host} could not be asked`),
    });
    expect(events.some((event) => event.phase === 'building')).toBe(false);
  }, 60_000);
});

describe('a registry that refuses the push', () => {
  test('fails the build with a sentence naming the registry', async () => {
    const readOnly = await startLocalRegistry({ readOnly: true });
    const prefix = `bindery-test/rr${randomBytes(4).toString('hex')}-`;
    const config = loadConfig({ BINDERY_REGISTRY: readOnly.host, BINDERY_IMAGE_PREFIX: prefix });
    const events: BuildEvent[] = [];
    try {
      const build = new Builder({ engine, config }).build(parseSource(FIXTURE), {
        onEvent: (event) => events.push(event),
      });
      await expect(build).rejects.toThrow(
        new RegExp(
          `^Pushing ${readOnly.host}/${prefix}\\S+ to the registry ${readOnly.host} failed: `,
        ),
      );
      expect(events.some((event) => event.phase === 'pushing')).toBe(true);
      expect(events.some((event) => event.phase === 'built')).toBe(false);
    } finally {
      await readOnly.close();
      for (const image of await engine.listImages(config.imagePrefix)) {
        await engine.removeImage(image.name);
      }
    }
  }, 180_000);
});
