// A process that takes a build network and dies holding it, for the test of leftovers.
// It prints the network's name and subnet, then waits to be killed.
//   node --import tsx test/helpers/build-network-process.ts <session network>
import { loadConfig } from '../../src/config.js';
import { DockerEngine } from '../../src/engine/docker-engine.js';
import { prepareSandbox } from '../../src/sandbox/prepare-sandbox.js';
import { quietLog } from './capture-log.js';

const [sessionNetwork] = process.argv.slice(2);
if (!sessionNetwork) throw new Error('usage: build-network-process.ts <session network>');

const config = loadConfig({ BINDERY_SESSION_NETWORK: sessionNetwork });
const sandbox = await prepareSandbox({ engine: new DockerEngine(), config, log: quietLog });
const { network, subnet } = await sandbox.build.acquire();
console.log(`${network} ${subnet}`);
setInterval(() => {}, 60_000);
