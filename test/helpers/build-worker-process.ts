// A build worker in a process of its own, for the test that kills one mid-build with SIGKILL.
// Its build announces itself in the log, then sleeps until the process dies.
//   node --import tsx test/helpers/build-worker-process.ts <queueName> [redisUrl]
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { BuildLog } from '../../src/queue/build-log.js';
import { createBuildWorker } from '../../workers/build-worker.js';

const [queueName, redisUrl = 'redis://127.0.0.1:6379'] = process.argv.slice(2);
if (!queueName) throw new Error('usage: build-worker-process.ts <queueName> [redisUrl]');

const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
createBuildWorker({
  connection,
  log: new BuildLog(connection),
  concurrency: 1,
  queueName,
  // Short, so that the test's second worker finds the job stalled within seconds.
  lockDuration: 2_000,
  stalledInterval: 1_000,
  build: async (_job, onEvent, signal) => {
    onEvent({ phase: 'fetching', message: `Build started in process ${process.pid}\n` });
    await sleep(600_000, undefined, { signal });
  },
});
