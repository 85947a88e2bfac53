import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { extract, pack, type Header } from 'tar-stream';
import type { ContainerEngine } from '../engine/container-engine.js';

/** The session's home directory: the repository and everything the visitor made (DESIGN §4.2). */
export const HOME = '/home/jovyan';

/** Directory names left out wherever they are: Python's bytecode and Jupyter's checkpoints. */
const EXCLUDED_NAMES = new Set(['__pycache__', '.ipynb_checkpoints']);

/**
 * Directories under the home directory left out: caches that tools fill again by themselves
 * (pip, matplotlib, npm, yarn, conda packages) and Jupyter's runtime files (kernel connection
 * files, which hold the kernels' keys and mean nothing in another session).
 */
export const EXCLUDED_PATHS = [
  '.cache',
  '.local/share/jupyter/runtime',
  '.npm',
  '.yarn/cache',
  '.conda/pkgs',
] as const;

/** Whether a path relative to the home directory (`a/b.txt`, no leading slash) is left out. */
export function isExcluded(relativePath: string): boolean {
  const parts = relativePath.split('/').filter(Boolean);
  if (parts.some((part) => EXCLUDED_NAMES.has(part))) return true;
  const path = parts.join('/');
  return EXCLUDED_PATHS.some((excluded) => path === excluded || path.startsWith(`${excluded}/`));
}

/** The entry types an archive of work keeps; devices and FIFOs are nobody's work. */
const KEPT_TYPES = new Set<Header['type']>(['file', 'directory', 'symlink', 'link']);

/** Bytes an entry takes in a tar: a 512-byte header, its content padded to 512 bytes. */
const tarBytes = (header: Header) =>
  512 + (header.type === 'file' ? Math.ceil(header.size / 512) * 512 : 0);

/** The home directory is larger than the cap: stopped before anything is sent, or mid-stream. */
export class ArchiveTooLargeError extends Error {
  constructor(
    /** What was counted when it stopped: at least this much, caches left out. */
    readonly countedBytes: number,
    readonly maxBytes: number,
  ) {
    super(`The home directory holds more than ${maxBytes} bytes (caches left out).`);
    this.name = this.constructor.name;
  }
}

/** One entry's content as tar-stream hands it over: read it through, or resume it. */
type TarEntry = ReturnType<typeof extract> extends AsyncIterable<infer Entry> ? Entry : never;

/** An entry's path below the archive's top directory (`jovyan/a/b` → `a/b`, `jovyan/` → ``). */
const belowTop = (name: string) => name.replace(/^\/?[^/]*\/?/, '');

/**
 * Walks the tar of the home directory, entry by entry, skipping what isExcluded and what is
 * not a file, directory or link; calls `keep` with each kept entry (its stream must be read
 * or resumed) after counting it. Throws ArchiveTooLargeError as soon as the count passes
 * `maxBytes`, and stops reading from the engine then.
 */
async function walkArchive(
  source: Readable,
  maxBytes: number,
  keep: (header: Header, relative: string, content: TarEntry) => Promise<void>,
): Promise<number> {
  const entries = extract();
  // tar-stream's streams are streamx's; Node's pipeline joins them as it joins its own.
  const feeding = pipeline(source, entries as unknown as Writable).catch(() => {});
  let counted = 0;
  try {
    for await (const entry of entries) {
      const relative = belowTop(entry.header.name);
      if (!KEPT_TYPES.has(entry.header.type) || isExcluded(relative)) {
        entry.resume();
        continue;
      }
      counted += tarBytes(entry.header);
      if (counted > maxBytes) throw new ArchiveTooLargeError(counted, maxBytes);
      await keep(entry.header, relative, entry);
    }
  } finally {
    source.destroy();
    await feeding;
  }
  return counted;
}

/**
 * Counts the bytes the archive of the session's home directory would hold (tar bytes, caches
 * left out) without keeping any of it; throws ArchiveTooLargeError past `maxBytes`.
 */
export async function measureHome(
  engine: Pick<ContainerEngine, 'archivePath'>,
  container: string,
  maxBytes: number,
): Promise<number> {
  const source = await engine.archivePath(container, HOME);
  return walkArchive(source, maxBytes, async (_header, _relative, content) => {
    content.resume();
  });
}

/**
 * Streams the session's home directory as a gzip'd tar into `destination`, caches left out,
 * its entries under `topDirectory/`. Past `maxBytes` (files may grow between measuring and
 * sending) it throws ArchiveTooLargeError and `destination` is destroyed, so the download
 * fails instead of arriving cut short as though whole.
 */
export async function writeHomeArchive(
  engine: Pick<ContainerEngine, 'archivePath'>,
  container: string,
  destination: Writable,
  options: { maxBytes: number; topDirectory: string },
): Promise<void> {
  const source = await engine.archivePath(container, HOME);
  const packer = pack();
  const sending = pipeline(packer as unknown as Readable, createGzip(), destination);
  const rename = (relative: string) => `${options.topDirectory}/${relative}`;
  try {
    await walkArchive(source, options.maxBytes, (header, relative, content) => {
      const copy: Header = {
        name: rename(relative),
        type: header.type,
        mode: header.mode,
        mtime: header.mtime,
        size: header.type === 'file' ? header.size : 0,
        linkname: header.type === 'link' ? rename(belowTop(header.linkname)) : header.linkname,
        uname: 'jovyan',
        gname: 'jovyan',
        uid: 1000,
        gid: 1000,
        devmajor: 0,
        devminor: 0,
      };
      return new Promise<void>((resolve, reject) => {
        const sink = packer.entry(copy, (error) => (error ? reject(error) : resolve()));
        if (copy.type === 'file' && copy.size > 0) content.pipe(sink);
        else content.resume();
      });
    });
    packer.finalize();
    await sending;
  } catch (error) {
    packer.destroy(error as Error);
    destination.destroy();
    await sending.catch(() => {});
    throw error;
  }
}
