// `bindery serve` and `bindery worker`: the service's roles in this process until a signal.
import { loadConfig } from '../config.js';
import { startService } from '../service.js';
import { whenAborted } from './when-aborted.js';

export async function runService(
  command: 'serve' | 'worker',
  signal: AbortSignal,
): Promise<number> {
  const config = loadConfig();
  const service = await startService({
    config,
    roles: command === 'serve' ? { web: true, worker: true, culler: true } : { worker: true },
  });
  console.error(
    service.url
      ? `Bindery listens on ${config.publicUrl} (${service.url})`
      : 'Bindery build worker running',
  );
  await whenAborted(signal);
  console.error('stopping...');
  await service.close();
  return 0;
}
