import { createHash } from 'node:crypto';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import dockerignoreModule from '@balena/dockerignore';
import { pack } from 'tar-fs';
import { configPath, readConfigFile, readRepoConfig, type RepoConfig } from './repo-config.js';

/** Name of the rendered Dockerfile inside the build context. */
export const RENDERED_DOCKERFILE = '.bindery.Dockerfile';

// The package is CommonJS with a `default` property; either shape is the factory.
const dockerignore = ((dockerignoreModule as unknown as { default?: unknown }).default ??
  dockerignoreModule) as unknown as typeof dockerignoreModule.default;

/** The pattern lines of an ignore file: trimmed, without blank lines and comments. */
const patternLines = (text = '') =>
  text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'));

/**
 * The ignore patterns of a repository's build context, as repo2docker gathers them. A
 * rendered Dockerfile's context honours .dockerignore then .containerignore from the config
 * directory (repo2docker base.py `build`, `self.binder_path(ignore_file_name)`), and docker-py's
 * `exclude_paths` keeps the root Dockerfile. A repository's own Dockerfile gets the context
 * docker-py makes of the root (repo2docker docker.py): the root .dockerignore alone, and the
 * Dockerfile always sent. docker-py's PatternMatcher then keeps the root .dockerignore itself.
 */
export async function contextIgnorePatterns(dir: string, config: RepoConfig): Promise<string[]> {
  if (config.files.Dockerfile !== undefined) {
    const rootIgnore = config.configDir
      ? await readConfigFile(dir, '.dockerignore')
      : config.files['.dockerignore'];
    return [...patternLines(rootIgnore), `!${configPath(config, 'Dockerfile')}`, '!.dockerignore'];
  }
  return [
    ...patternLines(config.files['.dockerignore']),
    ...patternLines(config.files['.containerignore']),
    '!Dockerfile',
    '!.dockerignore',
  ];
}

/** A pattern as docker-py cleans it: no empty or `.` parts, `..` taken back, no outer slashes. */
function cleanPattern(pattern: string): string {
  const parts: string[] = [];
  for (const part of pattern.split('/')) {
    if (part === '..') parts.pop();
    else if (part && part !== '.') parts.push(part);
  }
  return parts.join('/');
}

/**
 * The paths (files, links, directories) a build context of `dir` holds under `patterns`,
 * walked as docker-py's `PatternMatcher.walk` walks: an excluded directory is entered only when
 * an exception (`!pattern`) starts with its path, links are not followed, and matching ignores
 * case as docker-py's `fnmatch` does. Devices, pipes and sockets are left out: a git checkout
 * holds none, and tar-fs cannot pack them.
 */
export async function contextPaths(dir: string, patterns: string[]): Promise<string[]> {
  const rules = dockerignore({ ignorecase: true }).add(patterns);
  const exceptions = patterns.filter((p) => p.startsWith('!')).map((p) => cleanPattern(p.slice(1)));
  const paths: string[] = [];
  const walk = async (parent: string): Promise<void> => {
    const entries = await readdir(join(dir, parent), { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const path = parent ? `${parent}/${entry.name}` : entry.name;
      const excluded = rules.ignores(path);
      if (!excluded && (entry.isFile() || entry.isDirectory() || entry.isSymbolicLink())) {
        paths.push(path);
      }
      if (entry.isDirectory() && (!excluded || exceptions.some((p) => p.startsWith(path)))) {
        await walk(path);
      }
    }
  };
  await walk('');
  return paths;
}

/**
 * What goes into the build context of `dir`: its paths under the repository's ignore rules.
 * With a rendered Dockerfile the root `.dockerignore` and any `.bindery.Dockerfile` of the
 * repository stay out, because packBuildContext puts its own files at those two paths.
 */
async function contextFor(dir: string, config: RepoConfig, rendered: boolean): Promise<string[]> {
  const paths = await contextPaths(dir, await contextIgnorePatterns(dir, config));
  return rendered
    ? paths.filter((path) => path !== '.dockerignore' && path !== RENDERED_DOCKERFILE)
    : paths;
}

/**
 * A tar stream of `dir` as the Docker build context repo2docker would send, holding exactly
 * the paths of contextPaths. With a rendered Dockerfile, the stream also carries it under
 * RENDERED_DOCKERFILE and a root .dockerignore naming it and itself. The Docker daemon reads a
 * context's root .dockerignore only to drop that file and the Dockerfile when it names them
 * (moby builder/remotecontext `removeDockerfile`), so ours leaves `COPY .` the repository
 * exactly, and the repository's own root .dockerignore, which would otherwise be that file,
 * is left out: its rules are applied here instead.
 */
export async function packBuildContext(
  dir: string,
  config: RepoConfig,
  renderedDockerfile?: string,
): Promise<Readable> {
  const entries = await contextFor(dir, config, renderedDockerfile !== undefined);
  return pack(dir, {
    // tar-fs walks into listed directories; every path to pack is listed already.
    entries,
    ignore: () => true,
    finalize: renderedDockerfile === undefined,
    finish: (stream) => {
      if (renderedDockerfile === undefined) return;
      stream.entry({ name: RENDERED_DOCKERFILE, mode: 0o644 }, renderedDockerfile);
      stream.entry(
        { name: '.dockerignore', mode: 0o644 },
        `${RENDERED_DOCKERFILE}\n.dockerignore\n`,
      );
      stream.finalize();
    },
  }) as unknown as Readable;
}

/**
 * A SHA-1 of what building `dir` depends on: its configuration files as read, and the paths,
 * executable bits, contents and links of its build context. It is the "commit" of a local
 * directory: the same files give the same image name, and a change to a file the build
 * context leaves out but the build reads (an ignored apt.txt) still gives a new one.
 */
export async function hashDirectory(dir: string): Promise<string> {
  // A directory that cannot be listed fails here with the system's reason (ENOENT, ENOTDIR,
  // EACCES), which the caller words; a listable one then has its configuration checked.
  await readdir(dir);
  const config = await readRepoConfig(dir);
  const hash = createHash('sha1');
  hash.update(`config\0${JSON.stringify(config)}\0`);
  const rendered = config.files.Dockerfile === undefined;
  for (const path of await contextFor(dir, config, rendered)) {
    const full = join(dir, path);
    const info = await lstat(full);
    if (info.isSymbolicLink()) hash.update(`link\0${path}\0${await readlink(full)}\0`);
    else if (info.isDirectory()) hash.update(`dir\0${path}\0`);
    else if (info.isFile()) {
      hash.update(`file\0${path}\0${info.mode & 0o111 ? 'x' : '-'}\0${info.size}\0`);
      hash.update(await readFile(full));
    }
  }
  return hash.digest('hex');
}
