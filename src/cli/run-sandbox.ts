// `bindery sandbox [--remove]`: the sandbox networks and their firewall rules.
import { loadConfig } from '../config.js';
import { createEngine } from '../engine/create-engine.js';
import { createLog } from '../log/create-log.js';
import { prepareSandbox } from '../sandbox/prepare-sandbox.js';
import { say } from './terminal.js';

export async function runSandbox(remove: boolean, env?: NodeJS.ProcessEnv): Promise<number> {
  const config = loadConfig(env);
  const engine = createEngine(config);
  const sandbox = await prepareSandbox({ engine, config, log: createLog(config.log) });
  const networks = `${sandbox.network} (${sandbox.policy.bridge}) and the build networks ${sandbox.build.prefix}-* (${sandbox.build.policy.bridge})`;
  if (remove) {
    await sandbox.remove();
    say(`Removed the networks ${networks} and Bindery's firewall rules for them.`);
    return 0;
  }
  // On Swarm nodes whose rules are still missing (no session is placed there), each says why.
  const { ok, problems } = await sandbox.check();
  say([...(ok ? [`The sandbox is in place on ${networks}.`] : []), ...problems].join('\n'));
  return ok && problems.length === 0 ? 0 : 1;
}
