/**
 * Image pruner benchmark. IMAGES small images of their own (the base image and 1 MiB each),
 * then how long pruneImages takes: a run that only looks (no cap), a run that removes half of
 * them (a count budget), a run that removes the rest (a byte budget). Prints a table; the
 * images and Redis keys are removed at the end.
 *
 *   npx tsx bench/prune-images.ts          (IMAGES=100 to change the count, 10 to 300)
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { DockerEngine } from '../src/engine/docker-engine.js';
import { ImageLaunches } from '../src/sessions/image-launches.js';
import { pruneImages, type PruneDeps } from '../src/sessions/prune-images.js';
import { machine, median } from './report.js';

const exec = promisify(execFile);
const IMAGES = Math.min(Math.max(Number(process.env.IMAGES ?? 50) || 50, 10), 300);
const BASE = 'bindery/base:bookworm';

async function main(): Promise<void> {
  const run = randomBytes(4).toString('hex');
  const prefix = `bindery-bench/prune${run}-`;
  const namespace = `bench-prune-${run}`;
  const engine = new DockerEngine();
  const redis = new Redis();
  const launches = new ImageLaunches(redis, namespace);
  const deps = (maxCount: number, budgetBytes: number): PruneDeps => ({
    engine,
    launches,
    config: {
      imagePrefix: prefix,
      baseImage: BASE,
      images: { maxCount, budgetBytes, diskHeadroomBytes: 0 },
    },
  });
  const timed = async (maxCount: number, budgetBytes: number) => {
    const started = performance.now();
    const result = await pruneImages(deps(maxCount, budgetBytes));
    return { ms: performance.now() - started, removed: result.removed.length };
  };
  try {
    const building = performance.now();
    for (let n = 0; n < IMAGES; n++) {
      const build = exec('docker', ['build', '-q', '-t', `${prefix}i${n}:1`, '-']);
      build.child.stdin?.end(`FROM ${BASE}\nRUN head -c 1048576 /dev/urandom > /tmp/${run}-${n}\n`);
      await build;
      // Half of them launched once, in order: the other half counts from its build.
      if (n % 2 === 0) await (await launches.hold(`${prefix}i${n}:1`, 60_000))();
    }
    const buildS = (performance.now() - building) / 1000;
    const looks = [];
    for (let i = 0; i < 5; i++) looks.push((await timed(0, 0)).ms);
    const half = await timed(Math.floor(IMAGES / 2), 0);
    const rest = await timed(0, 1);
    const df = [];
    for (let i = 0; i < 5; i++) {
      const started = performance.now();
      await engine.listImages(prefix);
      df.push(performance.now() - started);
    }
    console.log(`${await machine()}; ${IMAGES} images built in ${buildS.toFixed(0)} s`);
    console.log('| run | images removed | time |');
    console.log('|---|---|---|');
    console.log(`| look only (no cap), median of 5 | 0 | ${median(looks).toFixed(0)} ms |`);
    console.log(
      `| of which Docker's disk usage report, median of 5 | – | ${median(df).toFixed(0)} ms |`,
    );
    console.log(
      `| count budget ${Math.floor(IMAGES / 2)} | ${half.removed} | ${half.ms.toFixed(0)} ms |`,
    );
    console.log(`| byte budget 1 B (the rest) | ${rest.removed} | ${rest.ms.toFixed(0)} ms |`);
  } finally {
    const { stdout } = await exec('docker', [
      'image',
      'ls',
      '--format',
      '{{.Repository}}:{{.Tag}}',
    ]);
    for (const name of stdout.split('\n').filter((name) => name.startsWith(prefix))) {
      await engine.removeImage(name);
    }
    const keys = await redis.keys(`${namespace}:*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
