import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { crc32, deflateRawSync } from 'node:zlib';

/** A pure-Python distribution the index serves as one `py3-none-any` wheel. */
export interface IndexPackage {
  /** Project name as people write it, e.g. `bindery-hello`. */
  name: string;
  version: string;
  /** Files inside the wheel by path, e.g. `{ 'bindery_hello/__init__.py': '...' }`. */
  files: Record<string, string>;
  /** `Requires-Dist` lines, e.g. `['bindery-greeting>=1']`. */
  requires?: string[];
}

export interface PackageIndexOptions {
  /** Address to listen on: loopback, or a Docker network's gateway. */
  host: string;
  packages: IndexPackage[];
  /** A folder of real wheels (see wheelhouse.ts) served beside the made-up packages. */
  wheelhouse?: string;
  /** HTTP basic credentials every request must carry (a private index); none by default. */
  auth?: { username: string; password: string };
  /** Link files by absolute URL (`http://host:port/files/…`), as some indexes do, not relatively. */
  absoluteLinks?: boolean;
}

export interface PackageIndex {
  /** The PEP 503 simple index, ending in `/simple/`: what PIP_INDEX_URL takes. */
  url: string;
  /** Every path requested so far, in order (proof that pip asked this index). */
  requests: string[];
  /** Each request's `Authorization` header, in the same order (empty when there was none). */
  authorizations: string[];
  close(): Promise<void>;
}

/** PEP 503 name normalization: lowercase, runs of `-`, `_` and `.` become one `-`. */
export const normalizeName = (name: string) => name.toLowerCase().replace(/[-_.]+/g, '-');

/** The distribution part of file names (wheel spec): runs of `-_.` become `_`. */
const distName = (name: string) => name.replace(/[-_.]+/g, '_');

const escapeHtml = (text: string) =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** A RECORD hash: `sha256=` and the unpadded URL-safe base64 digest. */
const recordHash = (data: Buffer) =>
  `sha256=${createHash('sha256').update(data).digest('base64url')}`;

/**
 * A zip archive of `entries`, deflated, as the wheel format asks (PKWARE APPNOTE: local
 * headers, then the central directory, then its end record). Dates are 1980-01-01.
 */
export function zip(entries: { path: string; data: Buffer }[]): Buffer {
  const DOS_DATE = (1 << 5) | 1;
  const UTF8_NAMES = 0x0800;
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const { path, data } of entries) {
    const name = Buffer.from(path, 'utf8');
    const compressed = deflateRawSync(data);
    const crc = crc32(data);

    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4); // version needed: 2.0 (deflate)
    local.writeUInt16LE(UTF8_NAMES, 6);
    local.writeUInt16LE(8, 8); // deflate
    local.writeUInt16LE(0, 10);
    local.writeUInt16LE(DOS_DATE, 12);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(compressed.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(0, 28);
    locals.push(local, name, compressed);

    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE((3 << 8) | 20, 4); // made by: Unix, 2.0
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(UTF8_NAMES, 8);
    central.writeUInt16LE(8, 10);
    central.writeUInt16LE(0, 12);
    central.writeUInt16LE(DOS_DATE, 14);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(compressed.length, 20);
    central.writeUInt32LE(data.length, 24);
    central.writeUInt16LE(name.length, 28);
    // extra length, comment length, disk number, internal attributes: all 0
    central.writeUInt32LE((0o100644 << 16) >>> 0, 38); // external attributes: a 0644 file
    central.writeUInt32LE(offset, 42);
    centrals.push(central, name);

    offset += local.length + name.length + compressed.length;
  }
  const directory = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, directory, end]);
}

/**
 * A `py3-none-any` wheel of `pkg`: its files plus the `.dist-info` directory (METADATA, WHEEL,
 * RECORD) that pip reads (PEP 427, PEP 376).
 */
export function buildWheel(pkg: IndexPackage): { filename: string; data: Buffer } {
  const dist = distName(pkg.name);
  const distInfo = `${dist}-${pkg.version}.dist-info`;
  const metadata = [
    'Metadata-Version: 2.1',
    `Name: ${pkg.name}`,
    `Version: ${pkg.version}`,
    ...(pkg.requires ?? []).map((requirement) => `Requires-Dist: ${requirement}`),
    '',
  ].join('\n');
  const wheel = [
    'Wheel-Version: 1.0',
    'Generator: bindery-test',
    'Root-Is-Purelib: true',
    'Tag: py3-none-any',
    '',
  ].join('\n');
  const entries = [
    ...Object.entries(pkg.files).map(([path, text]) => ({ path, data: Buffer.from(text) })),
    { path: `${distInfo}/METADATA`, data: Buffer.from(metadata) },
    { path: `${distInfo}/WHEEL`, data: Buffer.from(wheel) },
  ];
  const record = [
    ...entries.map(({ path, data }) => `${path},${recordHash(data)},${data.length}`),
    `${distInfo}/RECORD,,`,
    '',
  ].join('\n');
  entries.push({ path: `${distInfo}/RECORD`, data: Buffer.from(record) });
  return { filename: `${dist}-${pkg.version}-py3-none-any.whl`, data: zip(entries) };
}

const page = (title: string, links: string[]) =>
  `<!DOCTYPE html>\n<html><head><title>${escapeHtml(title)}</title></head><body>\n${links.join('<br>\n')}\n</body></html>\n`;

/**
 * Serves `packages` as wheels from a PEP 503 simple index on `host` (a free port): `/simple/`,
 * `/simple/<normalized-name>/` linking `../../files/<wheel>#sha256=…`, and the files.
 */
export async function startPackageIndex({
  host,
  packages,
  wheelhouse,
  auth,
  absoluteLinks = false,
}: PackageIndexOptions): Promise<PackageIndex> {
  /** Each file's bytes, read when asked for (a wheelhouse holds hundreds of MiB). */
  const files = new Map<string, () => Promise<Buffer>>();
  /** Each project's files; made-up wheels carry their hash, which Pipfile.lock checks. */
  const projects = new Map<string, { filename: string; sha256?: string }[]>();
  const add = (project: string, filename: string, read: () => Promise<Buffer>, sha256?: string) => {
    files.set(filename, read);
    projects.set(project, [...(projects.get(project) ?? []), { filename, sha256 }]);
  };
  for (const pkg of packages) {
    const { filename, data } = buildWheel(pkg);
    const sha256 = createHash('sha256').update(data).digest('hex');
    add(normalizeName(pkg.name), filename, async () => data, sha256);
  }
  for (const filename of wheelhouse ? await readdir(wheelhouse) : []) {
    // A wheel's name starts with its distribution name, up to the first '-' (PEP 427).
    if (!filename.endsWith('.whl')) continue;
    add(normalizeName(filename.split('-')[0]!), filename, () =>
      readFile(join(wheelhouse!, filename)),
    );
  }

  const requests: string[] = [];
  const authorizations: string[] = [];
  const expected =
    auth && `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`;
  const server = createServer((request, response) => {
    const path = decodeURIComponent(new URL(request.url ?? '/', 'http://index').pathname);
    requests.push(path);
    authorizations.push(request.headers.authorization ?? '');
    if (expected && request.headers.authorization !== expected) {
      response.writeHead(401, { 'www-authenticate': 'Basic realm="index"' });
      response.end('credentials required\n');
      return;
    }
    const filesUrl = absoluteLinks ? `http://${request.headers.host}/files/` : '../../files/';
    const send = (status: number, type: string, body: string | Buffer) => {
      response.writeHead(status, {
        'content-type': type,
        'content-length': Buffer.byteLength(body),
      });
      response.end(request.method === 'HEAD' ? undefined : body);
    };
    const html = 'text/html; charset=utf-8';
    if (path === '/simple/') {
      send(
        200,
        html,
        page(
          'Simple index',
          [...projects.keys()].map((name) => `<a href="${name}/">${name}</a>`),
        ),
      );
      return;
    }
    const project = /^\/simple\/([^/]+)\/$/.exec(path);
    const links = project && projects.get(normalizeName(project[1]!));
    if (links) {
      send(
        200,
        html,
        page(
          `Links for ${project[1]}`,
          links.map(
            ({ filename, sha256 }) =>
              `<a href="${filesUrl}${filename}${sha256 ? `#sha256=${sha256}` : ''}">${escapeHtml(filename)}</a>`,
          ),
        ),
      );
      return;
    }
    const file = /^\/files\/([^/]+)$/.exec(path);
    const read = file && files.get(file[1]!);
    if (read) {
      read().then(
        (data) => send(200, 'application/octet-stream', data),
        () => send(500, 'text/plain', 'unreadable\n'),
      );
      return;
    }
    send(404, 'text/plain', 'not found\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${urlHost}:${port}/simple/`,
    requests,
    authorizations,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}
