// The web role of a service (launch API, proxy, health; no build worker, so a build it queues
// stays queued and its followers keep waiting) in a process of its own, so that a test's many
// clients do not share the service's event loop. Prints `ready <url>` once it listens and
// closes on SIGTERM. With `loop-delay` it also writes to stderr, every 5 s, how long its event
// loop was held up at worst: what a probe waits for in this process.
//   node --import tsx test/helpers/web-service-process.ts <namespace> '<settings as JSON>' [loop-delay]
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { loadConfig } from '../../src/config.js';
import { startService } from '../../src/service.js';
import { quietLog } from './capture-log.js';

const [namespace, settings = '{}', report] = process.argv.slice(2);
if (!namespace) throw new Error("usage: web-service-process.ts <namespace> '<settings JSON>'");

const config = loadConfig(JSON.parse(settings) as Record<string, string>);
const service = await startService({
  config,
  namespace,
  host: '127.0.0.1',
  roles: ['web'],
  log: quietLog,
});
process.stdout.write(`ready ${service.url}\n`);
process.once('SIGTERM', () => {
  void service.close().finally(() => process.exit(0));
});

if (report === 'loop-delay') {
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  setInterval(() => {
    const ms = (ns: number) => (ns / 1e6).toFixed(0);
    process.stderr.write(
      `service event loop, last 5 s: p99 ${ms(delay.percentile(99))} ms, max ${ms(delay.max)} ms\n`,
    );
    delay.reset();
  }, 5_000).unref();
}
