import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { loadConfig } from '../../src/config.js';
import { DockerEngine } from '../../src/engine/docker-engine.js';
import { prepareSandbox } from '../../src/sandbox/prepare-sandbox.js';
import { startService, type RunningService } from '../../src/service.js';
import { readActionMetadata, runnerEnv } from '../helpers/action-runner.js';
import { freePort } from '../helpers/free-port.js';
import { startGitServer, type GitServer } from '../helpers/git-server.js';
import { quietLog } from '../helpers/capture-log.js';

const exec = promisify(execFile);
const ROOT = join(import.meta.dirname, '../..');
const BUNDLE = join(ROOT, 'action/dist/index.js');
const FIXTURES = join(ROOT, 'test/fixtures/repos');
const run = randomBytes(4).toString('hex');
const prefix = `bindery-test/a${run}-`;
const namespace = `a${run}`;
const TOKEN = `token-${run}`;
const network = `bindery-test-a${run}`;
/** The workflow run the step belongs to: its repository and commit fill the inputs' defaults. */
const WORKFLOW = { repository: 'someone/elsewhere', sha: 'f'.repeat(40) };
const engine = new DockerEngine();
const redis = new Redis();
const escaped = (url: string) => encodeURIComponent(url);

let git: GitServer;
let service: RunningService;
let server: string;
let work: string;

beforeAll(async () => {
  git = await startGitServer();
  work = await mkdtemp(join(tmpdir(), 'bindery-action-'));
  const port = await freePort();
  service = await startService({
    config: loadConfig({
      PORT: String(port),
      BINDERY_PUBLIC_URL: `http://127.0.0.1:${port}`,
      BINDERY_IMAGE_PREFIX: prefix,
      BINDERY_GIT_ALLOWED_HOSTS: '127.0.0.1',
      BINDERY_API_TOKENS: TOKEN,
      // A sandbox network of this file's own: `launch: true` starts real sessions on it.
      BINDERY_SESSION_NETWORK: network,
    }),
    namespace,
    host: '127.0.0.1',
    roles: ['web', 'build'],
    log: quietLog,
  });
  server = service.url!;
}, 60_000);

afterAll(async () => {
  await service?.close();
  for (const container of await engine.listSessions()) {
    if (container.labels['bindery.store'] === namespace) await engine.removeContainer(container.id);
  }
  const keys = [
    ...(await redis.keys(`${namespace}:*`)),
    ...(await redis.keys(`bull:*${namespace}*`)),
    ...(await redis.keys(`build:${prefix}*`)),
  ];
  if (keys.length > 0) await redis.del(...keys);
  const { stdout } = await exec('docker', ['image', 'ls', '--format', '{{.Repository}}:{{.Tag}}']);
  for (const image of stdout.split('\n').filter((name) => name.startsWith(prefix))) {
    await engine.removeImage(image);
  }
  redis.disconnect();
  await (
    await prepareSandbox({ engine, config: loadConfig({ BINDERY_SESSION_NETWORK: network }) })
  )
    .remove()
    .catch(() => {});
  await git?.close();
  await rm(work, { recursive: true, force: true });
}, 60_000);

/** Containers of this file's service's sessions. */
async function sessionsOfService(): Promise<string[]> {
  return (await engine.listSessions())
    .filter((container) => container.labels['bindery.store'] === namespace)
    .map((container) => container.id);
}

/** Reads a GITHUB_OUTPUT file: `name=value` lines and `name<<DELIMITER` heredocs. */
function parseOutputs(text: string): Record<string, string> {
  const outputs: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const heredoc = /^([^=<]+)<<(.+)$/.exec(line);
    if (heredoc) {
      const end = lines.indexOf(heredoc[2]!, i + 1);
      outputs[heredoc[1]!] = lines.slice(i + 1, end).join('\n');
      i = end;
    } else if (line.includes('=')) {
      outputs[line.slice(0, line.indexOf('='))] = line.slice(line.indexOf('=') + 1);
    }
  }
  return outputs;
}

/**
 * Runs the committed bundle as the runner would: INPUT_* variables for every input action.yml
 * declares (the step's values, else action.yml's defaults) and its two files.
 */
async function runBundle(inputs: Record<string, string>) {
  const dir = await mkdtemp(join(work, 'step-'));
  const outputFile = join(dir, 'output');
  const summaryFile = join(dir, 'summary');
  await writeFile(outputFile, '');
  await writeFile(summaryFile, '');
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    GITHUB_OUTPUT: outputFile,
    GITHUB_STEP_SUMMARY: summaryFile,
    ...runnerEnv(inputs, WORKFLOW),
  };
  const child = spawn(process.execPath, [BUNDLE], { env, cwd: dir });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  return {
    code,
    stdout,
    stderr,
    outputs: parseOutputs(await readFile(outputFile, 'utf8')),
    summary: await readFile(summaryFile, 'utf8'),
  };
}

const gitInputs = (url: string, ref: string, target = server): Record<string, string> => ({
  server: target,
  provider: 'git',
  repository: url,
  ref,
  token: TOKEN,
});

/**
 * An HTTP proxy in front of `target` that cuts the first /build stream after `cutAfter` events,
 * and records the `data:` events each /build connection carried.
 */
async function startCuttingProxy(target: string, cutAfter: number) {
  const connections: Record<string, unknown>[][] = [];
  const upstream = new URL(target);
  const proxy: Server = createServer((request, response) => {
    const isBuild = request.url?.startsWith('/build/') ?? false;
    const events: Record<string, unknown>[] = [];
    if (isBuild) connections.push(events);
    const cut = isBuild && connections.length === 1;
    const forward = httpRequest(
      {
        host: upstream.hostname,
        port: upstream.port,
        path: request.url,
        method: request.method,
        headers: request.headers,
      },
      (answer) => {
        response.writeHead(answer.statusCode ?? 502, answer.headers);
        let buffered = '';
        answer.on('data', (chunk: Buffer) => {
          response.write(chunk);
          buffered += chunk.toString();
          let end: number;
          while ((end = buffered.indexOf('\n\n')) >= 0) {
            const block = buffered.slice(0, end);
            buffered = buffered.slice(end + 2);
            // A message may carry an `id:` line before its `data:` (the build log's stream id).
            const data = block.split('\n').find((line) => line.startsWith('data:'));
            if (data) events.push(JSON.parse(data.slice(5)));
          }
          if (cut && events.length >= cutAfter) {
            response.destroy();
            forward.destroy();
          }
        });
        answer.on('end', () => response.end());
      },
    );
    forward.on('error', () => response.destroy());
    request.pipe(forward);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
    connections,
    close: () => {
      proxy.closeAllConnections();
      return new Promise((resolve) => proxy.close(resolve));
    },
  };
}

describe('the GitHub Action against a real Bindery server', () => {
  test('builds the workflow commit and writes image, launch-url, status, badge and a summary', async () => {
    const repo = await git.publish('demo', join(FIXTURES, 'default'));
    const step = await runBundle(gitInputs(repo.url, 'HEAD'));
    expect({ code: step.code, stderr: step.stderr }).toEqual({ code: 0, stderr: '' });

    const launchUrl = `${server}/v2/git/${escaped(repo.url)}/${repo.sha}`;
    expect(Object.keys(step.outputs).sort()).toEqual(
      Object.keys(readActionMetadata().outputs).sort(),
    );
    expect(step.outputs).toEqual({
      image: expect.stringMatching(new RegExp(`^${prefix}.*:${repo.sha}$`)),
      'launch-url': launchUrl,
      status: expect.stringMatching(/^(ready|built)$/),
      'badge-markdown': `[![Binder](${server}/badge_logo.svg)](${launchUrl})`,
    });
    expect(step.summary).toContain(step.outputs['badge-markdown']);
    // The log is in a group, with workflow commands off while the repository's output prints.
    expect(step.stdout).toMatch(
      /::group::Build log\n::stop-commands::(\S+)\n[\s\S]*Fetching [\s\S]*::\1::\n::endgroup::/,
    );
    // The launch URL really launches: its page asks for this repository's build.
    const page = await (await fetch(launchUrl)).text();
    expect(page).toContain(`/build/git/${escaped(repo.url)}/${repo.sha}`);
  }, 300_000);

  test('a server that drops the stream mid-build is followed to the end without a second build', async () => {
    await git.publish('drop', join(FIXTURES, 'default'));
    const sha = await git.commit('drop', { 'notes.md': `# ${run}\n` });
    const proxy = await startCuttingProxy(server, 3);
    try {
      const step = await runBundle(gitInputs(`${git.url}/drop.git`, sha, proxy.url));
      expect(step.code).toBe(0);
      expect(step.outputs.image).toMatch(new RegExp(`:${sha}$`));
      expect(step.stdout).toContain('reconnecting to the same build');

      // Two connections: the first cut mid-build, before any final event.
      expect(proxy.connections).toHaveLength(2);
      const [first, second] = proxy.connections as [
        Record<string, unknown>[],
        Record<string, unknown>[],
      ];
      expect(first.length).toBeGreaterThanOrEqual(3);
      expect(first.map((e) => e.phase)).not.toContain('built');
      // The second attached to the same build: it replays that build's log from its start, and
      // that log holds one fetch. A second build would have started with "Found built image"
      // or a fresh log.
      expect(second.slice(0, first.length)).toEqual(first);
      expect(second.filter((e) => e.phase === 'fetching')).toHaveLength(1);
      expect(second.at(-1)).toMatchObject({ phase: 'ready', imageName: step.outputs.image });
      // The replay is not printed twice.
      const fetching = String(first.find((e) => e.phase === 'fetching')!.message).trim();
      expect(step.stdout.split(fetching)).toHaveLength(2);
    } finally {
      await proxy.close();
    }
  }, 300_000);

  test('launch: true, with no token, starts a session on the server that answers with its token', async () => {
    const repo = await git.publish('launch', join(FIXTURES, 'default'));
    const before = await sessionsOfService();
    const inputs: Record<string, string> = { ...gitInputs(repo.url, 'HEAD'), launch: 'true' };
    delete inputs.token;
    const step = await runBundle(inputs);
    expect({ code: step.code, stderr: step.stderr }).toEqual({ code: 0, stderr: '' });
    expect(step.outputs).toMatchObject({
      image: expect.stringMatching(new RegExp(`^${prefix}.*:${repo.sha}$`)),
      status: 'ready',
      'launch-url': `${server}/v2/git/${escaped(repo.url)}/${repo.sha}`,
    });
    // The step's log says where the session runs; its token is not printed.
    const url = /server running at (\S+\/user\/(bindery-[0-9a-f]{12})\/)/.exec(step.stdout);
    expect(url).not.toBeNull();
    const [, sessionUrl, name] = url!;
    const started = (await sessionsOfService()).filter((id) => !before.includes(id));
    expect(started).toHaveLength(1);
    const { stdout } = await exec('docker', ['inspect', '-f', '{{json .Config.Env}}', started[0]!]);
    const tokenVariable = (JSON.parse(stdout) as string[]).find((v) =>
      v.startsWith('JUPYTER_TOKEN='),
    );
    const token = tokenVariable!.slice('JUPYTER_TOKEN='.length);
    expect(step.stdout).not.toContain(token);
    const status = await fetch(`${sessionUrl}api/status`, {
      headers: { authorization: `token ${token}` },
    });
    expect(status.status).toBe(200);
    expect(await status.json()).toHaveProperty('last_activity');
    expect((await fetch(`${sessionUrl}api/status`)).status).toBe(403);
    const { stdout: names } = await exec('docker', ['inspect', '-f', '{{.Name}}', started[0]!]);
    expect(names.trim()).toBe(`/${name}`);
  }, 300_000);

  test("a failing repository fails the step with the build's error", async () => {
    const broken = await git.publish('broken', join(FIXTURES, 'postbuild-fails'));
    const step = await runBundle(gitInputs(broken.url, 'HEAD'));
    expect(step.code).toBe(1);
    expect(step.stdout).toMatch(
      /^::error::The build of git\/.*broken\.git at HEAD failed: .*postBuild/m,
    );
    expect(step.outputs).toEqual({});
    expect(step.summary).toContain('The build did not succeed');
  }, 300_000);

  test('a wrong token fails the step saying the token was refused', async () => {
    const repo = await git.publish('token', join(FIXTURES, 'default'));
    const step = await runBundle({ ...gitInputs(repo.url, 'HEAD'), token: 'not-the-token' });
    expect(step.code).toBe(1);
    expect(step.stdout).toMatch(
      /^::error::The Bindery server refused the API token \(403: .*\)\. Check that the token input holds one of the server's BINDERY_API_TOKENS\.$/m,
    );
    expect(step.outputs).toEqual({});
  }, 60_000);

  test('an unreachable server fails the step at once', async () => {
    const nowhere = `http://127.0.0.1:${await freePort()}`;
    const step = await runBundle(gitInputs(`${git.url}/demo.git`, 'HEAD', nowhere));
    expect(step.code).toBe(1);
    expect(step.stdout).toContain(
      `::error::Could not reach the Bindery server at ${nowhere} (ECONNREFUSED).`,
    );
  }, 30_000);
});
