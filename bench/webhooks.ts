/**
 * Webhook benchmark (issue: "webhook acknowledgement stays fast under load"). The GitHub App's
 * parts as `bindery serve` wires them (test/helpers/github-harness.ts: the webhook endpoint,
 * the GitHub queue and worker, the build queue and a stand-in build worker) on real Redis.
 * GitHub is a process of its own, as it is in life: FakeGitHub's API on loopback and the sender
 * of DELIVERIES signed deliveries from @octokit/webhooks-examples (push to the default branch
 * and pull_request.synchronize) about SHAS commits in REPOS repositories, one installation each,
 * plus 5% redeliveries of ids already acknowledged, CONCURRENCY in flight. New commits arrive
 * throughout the run, each followed by more events about it. Nothing leaves the machine.
 * - acknowledgement: from sending the request to reading the response, p50/p90/p99/max;
 * - after the queues drain: builds run against distinct commits (one build per image).
 * Prints a block for BENCHMARKS.md; exits non-zero when a target is missed.
 *
 *   npm run bench:webhooks     (DELIVERIES=2000 SHAS=100 CONCURRENCY=32 DRAIN_SECONDS=900)
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { request } from 'node:http';
import { cpus, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { sign } from '@octokit/webhooks-methods';
import { Redis } from 'ioredis';
import { FakeGitHub, type FakeRepository } from '../test/helpers/fake-github.js';
import { startGheServer } from '../test/helpers/ghe-server.js';
import {
  startGitHubHarness,
  WEBHOOK_SECRET,
  type GitHubHarness,
} from '../test/helpers/github-harness.js';
import { webhookExample as example, type Payload } from '../test/helpers/webhook-examples.js';
import { percentile, writeSection } from './report.js';

const bounded = (value: string | undefined, fallback: number, min: number, max: number) =>
  Math.min(Math.max(Number(value ?? fallback) || fallback, min), max);
const DELIVERIES = bounded(process.env.DELIVERIES, 1_000, 1_000, 20_000);
const SHAS = bounded(process.env.SHAS, 50, 1, 1_000);
const REPOS = bounded(process.env.REPOS, 5, 1, 50);
const CONCURRENCY = bounded(process.env.CONCURRENCY, 16, 1, 128);
const DRAIN_SECONDS = bounded(process.env.DRAIN_SECONDS, 600, 10, 3_600);
const REDELIVERIES = Math.round(DELIVERIES * 0.05);
/** Tag pushes, which the app acknowledges and ignores: connections and JIT warm first. */
const WARM_UP = 50;
const APP_ID = 4242;
const P99_TARGET_MS = 50;
const DEFAULT_BRANCH = 'master';

/** mulberry32: the same mix of events and redeliveries on every run. */
function seededRandom(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

interface Repository {
  owner: string;
  name: string;
  installationId: number;
}

interface Commit {
  sha: string;
  repository: Repository;
  /** The pull request whose head it is. */
  number: number;
}

interface Delivery {
  kind: 'push' | 'pull_request' | 'warm-up';
  id: string;
  body: string;
  signature: string;
}

/** Points a payload's repository (and, for a pull request, base and head) at `repository`. */
function retarget(payload: Payload, repository: Repository): Payload {
  const { owner, name, installationId } = repository;
  const pr = payload.pull_request;
  for (const repo of [payload.repository, pr?.base.repo, pr?.head.repo]) {
    if (!repo) continue;
    Object.assign(repo, { name, full_name: `${owner}/${name}`, private: false });
    Object.assign(repo, { default_branch: DEFAULT_BRANCH });
    Object.assign(repo.owner, { login: owner, name: owner });
  }
  payload.installation.id = installationId;
  return payload;
}

function pushOf(commit: Commit): Payload {
  const push = example('push', (p) => p.ref === 'refs/heads/master' && p.installation);
  const payload = retarget(push, commit.repository);
  payload.ref = `refs/heads/${DEFAULT_BRANCH}`;
  payload.after = commit.sha;
  if (payload.head_commit) payload.head_commit.id = commit.sha;
  return payload;
}

function synchronizeOf(commit: Commit): Payload {
  const synchronize = example('pull_request', (p) => p.action === 'synchronize' && p.installation);
  const payload = retarget(synchronize, commit.repository);
  payload.number = payload.pull_request.number = commit.number;
  payload.pull_request.head.sha = commit.sha;
  payload.pull_request.base.ref = DEFAULT_BRANCH;
  return payload;
}

async function signed(kind: Delivery['kind'], payload: Payload): Promise<Delivery> {
  const body = JSON.stringify(payload);
  return { kind, id: randomUUID(), body, signature: await sign(WEBHOOK_SECRET, body) };
}

// ---- GitHub's side, in the forked process --------------------------------------------------

/**
 * POSTs one delivery on a connection of its own, as GitHub does; resolves with the status and
 * the milliseconds from sending the request to the end of the response.
 */
function send(url: string, delivery: Delivery) {
  return new Promise<{ status: number; ms: number }>((resolve, reject) => {
    const started = performance.now();
    const req = request(url, {
      method: 'POST',
      agent: false,
      headers: {
        'content-type': 'application/json',
        'x-github-event': delivery.kind === 'pull_request' ? 'pull_request' : 'push',
        'x-github-delivery': delivery.id,
        'x-hub-signature-256': delivery.signature,
      },
    });
    req.on('response', (response) => {
      response.resume();
      response.on('end', () =>
        resolve({ status: response.statusCode ?? 0, ms: performance.now() - started }),
      );
    });
    req.on('error', reject);
    req.end(delivery.body);
  });
}

interface Ack {
  kind: Delivery['kind'] | 'redelivery';
  status: number;
  ms: number;
}

type Plan = (Delivery | 'redelivery')[];

/**
 * Sends `plan` with `CONCURRENCY` in flight. A `'redelivery'` entry sends again, with its id,
 * a delivery already acknowledged, as GitHub's "Redeliver" button does.
 */
async function sendAll(url: string, plan: Plan, random: () => number): Promise<Ack[]> {
  const acks: Ack[] = [];
  const acknowledged: Delivery[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < plan.length) {
        const entry = plan[next++]!;
        const delivery =
          entry === 'redelivery' ? acknowledged[Math.floor(random() * acknowledged.length)] : entry;
        if (!delivery) throw new Error('a redelivery came before any delivery was acknowledged');
        const { status, ms } = await send(url, delivery);
        acks.push({ kind: entry === 'redelivery' ? 'redelivery' : delivery.kind, status, ms });
        if (entry !== 'redelivery' && status === 200) acknowledged.push(delivery);
      }
    }),
  );
  return acks;
}

type ToGitHub =
  | { type: 'serve'; repositories: FakeRepository[] }
  | { type: 'send'; url: string; warmUp: Delivery[]; plan: Plan; seed: number }
  | { type: 'tally' };

interface Sent {
  acks: Ack[];
  /** From the first delivery sent to the last acknowledged, warm-up excluded. */
  ms: number;
}

interface Tally {
  opened: number;
  succeeded: number;
  calls: number;
}

/** The forked process: serves the fake API, sends the deliveries, tallies the check runs. */
function runGitHub(): void {
  const github = new FakeGitHub(APP_ID);
  let server: Awaited<ReturnType<typeof startGheServer>> | undefined;
  const answer = async (message: ToGitHub) => {
    switch (message.type) {
      case 'serve': {
        for (const repository of message.repositories) github.addRepository(repository);
        server = await startGheServer(github, {});
        return `http://${server.host}`;
      }
      case 'send': {
        const random = seededRandom(message.seed);
        await sendAll(message.url, message.warmUp, random);
        const started = performance.now();
        const acks = await sendAll(message.url, message.plan, random);
        return { acks, ms: performance.now() - started } satisfies Sent;
      }
      case 'tally': {
        const runs = github.checkRuns;
        const succeeded = runs.filter((run) => run.conclusion === 'success').length;
        return { opened: runs.length, succeeded, calls: github.calls.length } satisfies Tally;
      }
    }
  };
  process.on('message', (message: ToGitHub) => {
    answer(message)
      .then((reply) => process.send!(reply))
      .catch((error: Error) => {
        console.error(`the GitHub process failed: ${error.message}`);
        process.exit(1);
      });
  });
  process.once('disconnect', () => {
    void server?.close();
  });
}

/** Sends `message` to the GitHub process and resolves with its answer. */
function ask<T>(child: ChildProcess, message: ToGitHub): Promise<T> {
  return new Promise((resolve, reject) => {
    const exited = (code: number | null) =>
      reject(new Error(`the GitHub process exited (${code})`));
    child.once('exit', exited);
    child.once('message', (reply) => {
      child.off('exit', exited);
      resolve(reply as T);
    });
    child.send(message);
  });
}

// ---- Bindery's side ------------------------------------------------------------------------

/** CPU model from /proc/cpuinfo, cores, memory, Node and Redis: no Docker in this benchmark. */
async function machine(redis: Redis): Promise<string> {
  const cpuinfo = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? cpus()[0]?.model ?? 'unknown';
  const redisVersion = /redis_version:(\S+)/.exec(await redis.info('server'))?.[1] ?? '?';
  const memory = Math.round(totalmem() / 2 ** 30);
  return `${cpus().length} × ${model.trim()}, ${memory} GiB, Node ${process.version}, Redis ${redisVersion}`;
}

const ms = (value: number) => `${value.toFixed(1)} ms`;
const row = (label: string, values: number[], target = '—') =>
  values.length === 0
    ? `| ${label} | 0 | — | — | — | — | ${target} |`
    : `| ${label} | ${values.length} | ${ms(percentile(values, 50))} | ${ms(percentile(values, 90))} | ${ms(percentile(values, 99))} | ${ms(Math.max(...values))} | ${target} |`;

/**
 * DELIVERIES deliveries, half pushes and half pull request pushes. Commit `i` first appears at
 * delivery `i × DELIVERIES / SHAS`; every other delivery is about a commit seen already.
 */
async function planDeliveries(commits: Commit[], random: () => number): Promise<Plan> {
  const plan: Plan = [];
  let seen = 0;
  for (let index = 0; index < DELIVERIES; index++) {
    const newest = Math.floor((index * SHAS) / DELIVERIES);
    const commit = commits[newest === seen ? seen++ : Math.floor(random() * seen)]!;
    const push = random() < 0.5;
    plan.push(
      await signed(push ? 'push' : 'pull_request', (push ? pushOf : synchronizeOf)(commit)),
    );
  }
  for (let index = 0; index < REDELIVERIES; index++) {
    // Past the first rounds of requests in flight, so that some are acknowledged already.
    const at = 2 * CONCURRENCY + Math.floor(random() * (plan.length - 2 * CONCURRENCY));
    plan.splice(at, 0, 'redelivery');
  }
  return plan;
}

async function main(): Promise<void> {
  const run = randomBytes(4).toString('hex');
  const random = seededRandom(0xb1d);
  // Names and installation ids of this run only: locks, pull request keys and the clustered
  // rate limiter in Redis are keyed by them, and another run (or test) may share this Redis.
  const owner = `bench-${run}`;
  const firstInstallation = (Number.parseInt(run, 16) % 1_000_000_000) + 1;
  const repositories: Repository[] = Array.from({ length: REPOS }, (_, index) => ({
    owner,
    name: `notebooks-${index}`,
    installationId: firstInstallation + index,
  }));
  const commits: Commit[] = Array.from({ length: SHAS }, (_, index) => ({
    sha: randomBytes(20).toString('hex'),
    repository: repositories[index % REPOS]!,
    number: 1 + Math.floor(index / REPOS),
  }));
  const plan = await planDeliveries(commits, random);
  const warmUp: Delivery[] = [];
  for (let index = 0; index < WARM_UP; index++) {
    const payload = pushOf(commits[index % SHAS]!);
    payload.ref = `refs/tags/warm-up-${index}`;
    warmUp.push(await signed('warm-up', payload));
  }

  const github = fork(fileURLToPath(import.meta.url), ['github']);
  const redis = new Redis({ maxRetriesPerRequest: 1 });
  let harness: GitHubHarness | undefined;
  let acks: Ack[];
  let sentInMs: number;
  let tally: Tally;
  let drainedInMs: number | undefined;
  let drainError: string | undefined;
  let measuredOn: string;
  try {
    measuredOn = await machine(redis);
    const githubUrl = await ask<string>(github, {
      type: 'serve',
      repositories: repositories.map((repository) => ({
        owner,
        name: repository.name,
        defaultBranch: DEFAULT_BRANCH,
        branches: {
          [DEFAULT_BRANCH]: commits.findLast((commit) => commit.repository === repository)!.sha,
        },
      })),
    });
    harness = await startGitHubHarness({ appId: APP_ID, githubUrl });
    const order: ToGitHub = { type: 'send', url: harness.url, warmUp, plan, seed: 0x5e7d };
    ({ acks, ms: sentInMs } = await ask<Sent>(github, order));
    const all = acks.map((ack) => ack.ms);
    console.error(
      `sent ${acks.length} deliveries in ${(sentInMs / 1000).toFixed(1)} s: ack p50 ` +
        `${ms(percentile(all, 50))}, p99 ${ms(percentile(all, 99))}; ` +
        `${harness.built.length} builds so far, waiting for the queues to drain`,
    );
    const drainStarted = performance.now();
    try {
      await harness.idle(DRAIN_SECONDS * 1000);
      drainedInMs = performance.now() - drainStarted;
    } catch (error) {
      drainError = (error as Error).message;
    }
    tally = await ask<Tally>(github, { type: 'tally' });
  } finally {
    await harness?.close();
    if (github.connected) github.disconnect();
    const keys = [
      ...(await redis.keys(`bindery:github:*${owner}/*`)),
      ...(harness ? await redis.keys(`build:${harness.namespace}/*`) : []),
    ];
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  }

  const built = harness.built;
  const of = (kind: Ack['kind']) => acks.filter((ack) => ack.kind === kind).map((ack) => ack.ms);
  const all = acks.map((ack) => ack.ms);
  const ok = acks.filter((ack) => ack.status === 200).length;
  const statuses = [...new Set(acks.map((ack) => ack.status))].sort().join(', ');
  const images = new Set(built.map((job) => job.imageName));
  const builtShas = new Set(built.map((job) => job.ref));
  const failedJobs = harness.logs.filter((line) => / failed \(try /.test(line));
  const p99 = percentile(all, 99);
  const targets = [
    { name: `ack p99 ${ms(p99)} under ${P99_TARGET_MS} ms`, pass: p99 < P99_TARGET_MS },
    { name: `every delivery answered 200 (${ok} of ${acks.length})`, pass: ok === acks.length },
    {
      name: `builds ${built.length} == distinct SHAs ${SHAS} (${images.size} distinct images)`,
      pass:
        built.length === SHAS &&
        images.size === SHAS &&
        commits.every((commit) => builtShas.has(commit.sha)),
    },
  ];
  const drained =
    drainedInMs === undefined
      ? `not drained after ${DRAIN_SECONDS} s: ${drainError}`
      : `drained in ${(drainedInMs / 1000).toFixed(1)} s`;

  const body = [
    `Measured ${new Date().toISOString().slice(0, 10)} on ${measuredOn}.`,
    `\`npm run bench:webhooks\`: ${acks.length} signed deliveries (${DELIVERIES} + ${REDELIVERIES} redeliveries of acknowledged ids) at concurrency ${CONCURRENCY}, sent in ${(sentInMs / 1000).toFixed(2)} s (${Math.round(acks.length / (sentInMs / 1000))} a second) after ${WARM_UP} ignored tag pushes; ${SHAS} commits across ${REPOS} repositories, one installation each.`,
    '',
    '| acknowledgement (request sent → response read) | deliveries | p50 | p90 | p99 | max | target |',
    '|---|---|---|---|---|---|---|',
    row('push to the default branch', of('push')),
    row('`pull_request.synchronize`', of('pull_request')),
    row('redelivery of an acknowledged id', of('redelivery')),
    row('all', all, `p99 under ${P99_TARGET_MS} ms`),
    '',
    `| after the queues (${drained}) | result | target |`,
    '|---|---|---|',
    `| responses | ${ok} of ${acks.length} \`200\` (statuses: ${statuses}) | all \`200\` |`,
    `| builds run | ${built.length} for ${SHAS} distinct commits (${images.size} distinct images) | one per distinct commit |`,
    `| check runs | ${tally.opened} opened, ${tally.succeeded} \`success\` | — |`,
    `| GitHub API calls answered by the fake | ${tally.calls} | — |`,
    `| GitHub jobs that failed a try | ${failedJobs.length} | — |`,
  ].join('\n');
  const about = `\`bench/webhooks.ts\` runs the GitHub App's parts as \`bindery serve\` wires them, in one process: the webhook endpoint (signature check, Probot, handlers that only enqueue), the GitHub queue and worker, the build queue and a stand-in build worker (50 ms a build), on real Redis. GitHub is a second process: \`FakeGitHub\` answering the API on loopback, and the sender of @octokit/webhooks-examples' push to \`master\` and \`pull_request.synchronize\`, pointed at the run's repositories and commits, each delivery on a new connection as GitHub sends them. An acknowledgement is timed from sending the request to reading the response, while the GitHub worker works through the new commits in the endpoint's process; both processes and Redis share the machine's CPUs. Draining is paced by GitHub's write limit, one a second per installation.`;
  console.log(await writeSection('webhooks', 'Webhooks', about, body));
  for (const line of failedJobs.slice(0, 5)) console.log(`  ${line}`);
  for (const target of targets) console.log(`${target.pass ? 'PASS' : 'FAIL'}: ${target.name}`);
  if (targets.some((target) => !target.pass)) process.exitCode = 1;
}

if (process.argv[2] === 'github') runGitHub();
else await main();
