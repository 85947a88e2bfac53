// `bindery build`: builds an image unless it exists, and says how long that took.
import { performance } from 'node:perf_hooks';
import { Builder, type BuildResult } from '../build/builder.js';
import { loadConfig, type Config } from '../config.js';
import { DockerEngine } from '../engine/docker-engine.js';
import { formatDuration } from '../format-duration.js';
import { parseSource, type RepoSpec } from '../repos/repo-spec.js';
import type { CommandOptions } from './command-line.js';
import { print, say } from './terminal.js';

export interface CommandLineBuild {
  config: Config;
  engine: DockerEngine;
  spec: RepoSpec;
  result: BuildResult;
}

/** Builds `source` as the command line asks, the log on stderr; `launch` starts from here. */
export async function buildFromCommandLine(
  source: string,
  options: CommandOptions,
  signal: AbortSignal,
): Promise<CommandLineBuild> {
  const config = loadConfig();
  const spec = parseSource(source, options.ref);
  const engine = new DockerEngine(config.docker);
  // Asked alongside the build's first steps (a round trip saved); when Docker is down, its
  // sentence is the one shown.
  const pinged = engine.ping();
  const started = performance.now();
  const building = new Builder({ engine, config }).build(spec, {
    imageName: options.image,
    signal,
    onEvent: (event) =>
      process.stderr.write(
        event.phase === 'building' ? event.message : `[${event.phase}] ${event.message}`,
      ),
  });
  building.catch(() => {});
  await pinged;
  const result = await building;
  const took = performance.now() - started;
  // Under a minute in tenths of a second: a found image takes well under one.
  const duration = formatDuration(took, { tenths: true });
  say(result.cached ? `Found the built image in ${duration}.` : `Built the image in ${duration}.`);
  return { config, engine, spec, result };
}

export async function runBuild(
  source: string,
  options: CommandOptions,
  signal: AbortSignal,
): Promise<number> {
  const { result } = await buildFromCommandLine(source, options, signal);
  print(result.imageName);
  return 0;
}
