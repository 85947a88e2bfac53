// `bindery serve` and `bindery worker`: the service's roles in this process until a signal.
import { loadConfig } from '../config.js';
import { createLog } from '../log/create-log.js';
import { startService, type Role } from '../service.js';
import { whenAborted } from './when-aborted.js';

export async function runService(
  command: 'serve' | 'worker',
  named: Role[],
  signal: AbortSignal,
): Promise<number> {
  const config = loadConfig();
  // Without --role: the command's roles, the GitHub worker only when the App is set up.
  const github: Role[] = config.githubApp ? ['github'] : [];
  const roles: Role[] =
    named.length > 0
      ? named
      : command === 'serve'
        ? ['web', 'build', ...github, 'culler']
        : ['build', ...github];
  const log = createLog(config.log);
  const service = await startService({ config, roles, log });
  log.info(
    service.url
      ? `Bindery listens on ${config.publicUrl} (${service.url}); roles: ${roles.join(', ')}`
      : `Bindery running roles: ${roles.join(', ')}`,
  );
  await whenAborted(signal);
  log.info('stopping');
  await service.close();
  return 0;
}
