// `bindery launch`: builds, starts Jupyter in a session, prints its URL, removes it on a signal.
import { startSession, waitForJupyter } from '../sessions/start-session.js';
import type { CommandOptions } from './command-line.js';
import { print, say } from './terminal.js';
import { buildFromCommandLine } from './run-build.js';
import { whenAborted } from './when-aborted.js';

export async function runLaunch(
  source: string,
  options: CommandOptions,
  signal: AbortSignal,
): Promise<number> {
  const { config, engine, spec, result } = await buildFromCommandLine(source, options, signal);
  if (signal.aborted) return 0;
  const session = await startSession({
    engine,
    config,
    imageName: result.imageName,
    repoLabel: spec.repoLabel,
    publishOn: options.publish,
  });
  try {
    const ready = waitForJupyter(session.url, session.token);
    // Once a signal has won the race, Jupyter's failure to answer concerns nobody.
    ready.catch(() => {});
    const up = await Promise.race([ready.then(() => true), whenAborted(signal).then(() => false)]);
    if (!up) return 0;
    print(`${session.url}?token=${session.token}`);
    say('Jupyter is running; press Ctrl-C to stop it and remove the session.');
    const exited = engine.waitForExit(session.container.id).then((code) => {
      if (!signal.aborted) say(`The session's Jupyter exited with code ${code}.`);
    });
    await Promise.race([whenAborted(signal), exited]);
  } finally {
    await engine.removeContainer(session.container.id);
  }
  return 0;
}
