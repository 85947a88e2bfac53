import type { Config } from '../config.js';
import { DockerEngine } from './docker-engine.js';
import { SwarmEngine } from './swarm-engine.js';

/** The engine BINDERY_ENGINE names: sessions as Swarm services, or containers on this daemon; builds stay on this daemon either way. */
export const createEngine = (config: Config): DockerEngine =>
  config.engine === 'swarm' ? new SwarmEngine(config.docker) : new DockerEngine(config.docker);
