import { createHash } from 'node:crypto';
import { readFile, readdir, lstat, readlink } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { Readable } from 'node:stream';
import dockerignoreModule from '@balena/dockerignore';
import { pack } from 'tar-fs';

/** Name of the rendered Dockerfile inside the build context. */
export const RENDERED_DOCKERFILE = '.bindery.Dockerfile';

// The package is CommonJS with a `default` property; either shape is the factory.
const dockerignore = ((dockerignoreModule as unknown as { default?: unknown }).default ??
  dockerignoreModule) as unknown as typeof dockerignoreModule.default;

/** The repository's .dockerignore rules, as the Docker CLI applies them to a context. */
async function ignoreRules(dir: string) {
  const text = await readFile(join(dir, '.dockerignore'), 'utf8').catch(() => '');
  const rules = dockerignore().add(
    text
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line && !line.startsWith('#')),
  );
  return (path: string) => path !== '' && rules.ignores(path);
}

/**
 * A tar stream of `dir` as a Docker build context, honouring its .dockerignore like the Docker
 * CLI. A rendered Dockerfile is added under RENDERED_DOCKERFILE, with a .dockerignore naming
 * it so the daemon drops it from the context: `COPY .` then copies the repository exactly.
 */
export async function packBuildContext(
  dir: string,
  renderedDockerfile?: string,
): Promise<Readable> {
  const ignored = await ignoreRules(dir);
  return pack(dir, {
    ignore: (path) => ignored(relative(dir, path)),
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
 * A SHA-1 of what a build context of `dir` holds (paths, executable bits, contents, links),
 * the "commit" of a local directory: the same files give the same image name.
 */
export async function hashDirectory(dir: string): Promise<string> {
  const ignored = await ignoreRules(dir);
  const entries = (await readdir(dir, { recursive: true })).map((path) => path.toString()).sort();
  const hash = createHash('sha1');
  for (const path of entries) {
    if (ignored(path)) continue;
    const full = join(dir, path);
    const info = await lstat(full);
    if (info.isSymbolicLink()) hash.update(`link\0${path}\0${await readlink(full)}\0`);
    else if (info.isFile()) {
      hash.update(`file\0${path}\0${info.mode & 0o111 ? 'x' : '-'}\0${info.size}\0`);
      hash.update(await readFile(full));
    }
  }
  return hash.digest('hex');
}
