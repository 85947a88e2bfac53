// Entry point of the `bindery` command: parses arguments, builds dependencies, calls one
// function, handles signals. Logic lives in src/build, src/sessions and friends.
import { parseArgs } from 'node:util';
import { Builder } from './build/builder.js';
import { loadConfig } from './config.js';
import { DockerEngine } from './engine/docker-engine.js';
import { BinderyError } from './errors.js';
import { parseSource } from './repos/repo-spec.js';
import { prepareSandbox } from './sandbox/prepare-sandbox.js';
import { startService } from './service.js';
import { startSession, waitForJupyter } from './sessions/start-session.js';

const USAGE = `usage:
  bindery serve                                         web + build worker + culler (one machine)
  bindery worker                                        only the build worker
  bindery sandbox [--remove]                            install and check the session and build
                                                        networks and their firewall rules, or remove them
  bindery build <path|url> [--ref REF] [--image NAME]   build an image; prints its name last
  bindery launch <path|url> [--ref REF] [--publish ADDR] build, start Jupyter, print its URL
                                                        (published on 127.0.0.1 unless ADDR says otherwise)`;

async function main(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      ref: { type: 'string' },
      image: { type: 'string' },
      publish: { type: 'string', default: '127.0.0.1' },
      help: { type: 'boolean' },
      remove: { type: 'boolean' },
    },
  });
  const [command, source] = positionals;
  const config = loadConfig();
  if (command === 'serve' || command === 'worker') {
    const service = await startService({
      config,
      roles: command === 'serve' ? { web: true, worker: true, culler: true } : { worker: true },
    });
    console.error(
      service.url
        ? `Bindery listens on ${config.publicUrl} (${service.url})`
        : 'Bindery build worker running',
    );
    await new Promise((resolve) => process.once('SIGINT', resolve).once('SIGTERM', resolve));
    console.error('stopping...');
    await service.close();
    return 0;
  }
  if (command === 'sandbox') {
    const engine = new DockerEngine(config.dockerHost);
    const sandbox = await prepareSandbox({ engine, config });
    const networks = `${sandbox.network} (${sandbox.policy.bridge}) and the build networks ${sandbox.build.prefix}-* (${sandbox.build.policy.bridge})`;
    if (values.remove) {
      await sandbox.remove();
      console.error(`Removed the networks ${networks} and Bindery's firewall rules for them.`);
      return 0;
    }
    const { ok, problems } = await sandbox.check();
    console.error(ok ? `The sandbox is in place on ${networks}.` : problems.join('\n'));
    return ok ? 0 : 1;
  }
  if (values.help || !command || !['build', 'launch'].includes(command) || !source) {
    console.error(USAGE);
    return values.help ? 0 : 2;
  }
  const engine = new DockerEngine(config.dockerHost);
  await engine.ping();
  const builder = new Builder({ engine, config });
  const spec = parseSource(source, values.ref);
  const abort = new AbortController();
  const stop = () => abort.abort(new BinderyError('Interrupted.'));
  process.once('SIGINT', stop).once('SIGTERM', stop);

  const result = await builder.build(spec, {
    imageName: values.image,
    signal: abort.signal,
    onEvent: (event) =>
      process.stderr.write(
        event.phase === 'building' ? event.message : `[${event.phase}] ${event.message}`,
      ),
  });
  if (command === 'build') {
    console.log(result.imageName);
    return 0;
  }

  const session = await startSession({
    engine,
    config,
    imageName: result.imageName,
    repoLabel: spec.repoLabel,
    publishOn: values.publish,
  });
  try {
    await waitForJupyter(session.url, session.token);
    console.log(`${session.url}?token=${session.token}`);
    console.error('Jupyter is running; press Ctrl-C to stop it and remove the session.');
    const interrupted = new Promise((resolve) =>
      abort.signal.addEventListener('abort', resolve, { once: true }),
    );
    const exited = engine.waitForExit(session.container.id).then((code) => {
      if (!abort.signal.aborted) console.error(`The session's Jupyter exited with code ${code}.`);
    });
    await Promise.race([interrupted, exited]);
  } finally {
    await engine.removeContainer(session.container.id);
  }
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    // People get a sentence; only unexpected failures get a stack.
    console.error(error instanceof BinderyError ? `bindery: ${error.message}` : error);
    process.exit(1);
  },
);
