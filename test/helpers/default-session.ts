import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Builder } from '../../src/build/builder.js';
import { loadConfig, type Config } from '../../src/config.js';
import { DockerEngine } from '../../src/engine/docker-engine.js';
import { parseSource } from '../../src/repos/repo-spec.js';
import {
  startSession,
  waitForJupyter,
  type StartedSession,
} from '../../src/sessions/start-session.js';

export interface DefaultSession {
  config: Config;
  engine: DockerEngine;
  imageName: string;
  session: StartedSession;
  /** Removes the session and its image. */
  remove(): Promise<void>;
}

/**
 * Builds `test/fixtures/repos/default` under an image prefix of the calling file's own
 * (`bindery-test/<letter><random>-`) and starts one session of it on 127.0.0.1, its Jupyter
 * answering, as `bindery launch` does.
 */
export async function startDefaultSession(letter: string): Promise<DefaultSession> {
  const config = loadConfig({
    BINDERY_IMAGE_PREFIX: `bindery-test/${letter}${randomBytes(4).toString('hex')}-`,
  });
  const engine = new DockerEngine();
  const spec = parseSource(join(import.meta.dirname, '../fixtures/repos/default'));
  const { imageName } = await new Builder({ engine, config }).build(spec);
  const session = await startSession({
    engine,
    config,
    imageName,
    repoLabel: spec.repoLabel,
    publishOn: '127.0.0.1',
  });
  await waitForJupyter(session.url, session.token);
  return {
    config,
    engine,
    imageName,
    session,
    async remove() {
      await engine.removeContainer(session.container.id);
      await engine.removeImage(imageName);
    },
  };
}
