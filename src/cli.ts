// Entry point of the `bindery` command: reads the arguments, loads the one command asked for,
// handles signals. Logic lives in src/build, src/sessions and friends; bin/bindery.js runs the
// compiled copy of this file (dist/cli.js, `npm run build`).
//
// Help, --version and usage errors load nothing but src/cli/command-line.ts and read no
// configuration, so they answer in a node start. Exit status: 0 done, 1 failed (one sentence),
// 2 usage error, 130 after Ctrl-C; SIGTERM ends a service or a launch with 0 once it has
// cleaned up, and a build it cuts short with 143.
import { readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { inspect } from 'node:util';
import { BinderyError } from './errors.js';
import { parseCommandLine, UsageError, type CommandLine } from './cli/command-line.js';

type Run = Extract<CommandLine, { action: 'run' }>;

/** Loads the code of one command only: `bindery build` never loads the web service. */
async function runCommand({ command, source, options }: Run, signal: AbortSignal) {
  switch (command) {
    case 'serve':
    case 'worker':
      return (await import('./cli/run-service.js')).runService(command, options.roles, signal);
    case 'sandbox':
      return (await import('./cli/run-sandbox.js')).runSandbox(options.remove);
    case 'build':
      return (await import('./cli/run-build.js')).runBuild(source, options, signal);
    case 'launch':
      return (await import('./cli/run-launch.js')).runLaunch(source, options, signal);
  }
}

/** The first Ctrl-C or SIGTERM asks the command to stop and clean up; a second one leaves now. */
function listenForSignals(): { signal: AbortSignal; received: () => NodeJS.Signals | undefined } {
  const stop = new AbortController();
  let received: NodeJS.Signals | undefined;
  const onSignal = (name: NodeJS.Signals) => {
    if (received) process.exit(128 + constants.signals[name]);
    received = name;
    stop.abort(new BinderyError(`Interrupted (${name}).`));
  };
  process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
  return { signal: stop.signal, received: () => received };
}

async function main(argv: string[]): Promise<number> {
  const line = parseCommandLine(argv);
  if (line.action === 'help') {
    process.stdout.write(`${line.text}\n`);
    return 0;
  }
  if (line.action === 'version') {
    const manifest = readFileSync(new URL('../package.json', import.meta.url), 'utf8');
    process.stdout.write(`bindery ${(JSON.parse(manifest) as { version: string }).version}\n`);
    return 0;
  }
  const { signal, received } = listenForSignals();
  try {
    const code = await runCommand(line, signal);
    return received() === 'SIGINT' ? 130 : code;
  } catch (error) {
    const name = received();
    if (!name) throw error;
    process.stderr.write(`bindery: stopped by ${name}.\n`);
    return 128 + constants.signals[name];
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    // People get a sentence; only unexpected failures get a stack.
    if (error instanceof UsageError) {
      process.stderr.write(`bindery: ${error.message}\n\n${error.usage}\n`);
      process.exit(2);
    }
    // The command's own words (src/cli/terminal.ts says why), written here without loading it.
    process.stderr.write(
      `${error instanceof BinderyError ? `bindery: ${error.message}` : inspect(error)}\n`,
    );
    process.exit(1);
  },
);
