/**
 * What one network per build adds to a build: the sandbox's `build.acquire()` (check the
 * shared rules, create the network, add and check its ARP rule) and `release()` (remove the
 * rule and the network), ROUNDS times one after another on a sandbox of its own; median and p95
 * of each. Prints the figures; it writes nothing.
 *
 *   npx tsx bench/build-network.ts            (ROUNDS=20 to change the count, 5 to 200)
 */
import { randomBytes } from 'node:crypto';
import { loadConfig } from '../src/config.js';
import { DockerEngine } from '../src/engine/docker-engine.js';
import { prepareSandbox } from '../src/sandbox/prepare-sandbox.js';
import { machine, median, percentile } from './report.js';

const ROUNDS = Math.min(Math.max(Number(process.env.ROUNDS ?? 20) || 20, 5), 200);
const ms = (value: number) => `${value.toFixed(0)} ms`;

async function main(): Promise<void> {
  const engine = new DockerEngine();
  const config = loadConfig({ BINDERY_SESSION_NETWORK: `bench-${randomBytes(3).toString('hex')}` });
  const sandbox = await prepareSandbox({ engine, config });
  const acquire: number[] = [];
  const release: number[] = [];
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const started = performance.now();
      const network = await sandbox.build.acquire();
      const made = performance.now();
      await network.release();
      acquire.push(made - started);
      release.push(performance.now() - made);
    }
  } finally {
    await sandbox.remove();
  }
  const total = acquire.map((value, i) => value + release[i]!);
  console.log(`${await machine()}; ${ROUNDS} rounds`);
  for (const [name, values] of [
    ['acquire', acquire],
    ['release', release],
    ['added per build', total],
  ] as const) {
    console.log(`${name}: median ${ms(median(values))}, p95 ${ms(percentile(values, 95))}`);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
