import { execFile, spawn } from 'node:child_process';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);

const GIT_ENV = {
  GIT_AUTHOR_NAME: 'Bindery Test',
  GIT_AUTHOR_EMAIL: 'test@bindery.invalid',
  GIT_COMMITTER_NAME: 'Bindery Test',
  GIT_COMMITTER_EMAIL: 'test@bindery.invalid',
  GIT_CONFIG_GLOBAL: '/dev/null',
};

export async function git(cwd: string, ...args: string[]): Promise<string> {
  const { stdout } = await exec('git', args, { cwd, env: { ...process.env, ...GIT_ENV } });
  return stdout.trim();
}

export interface GitServer {
  /** http://127.0.0.1:PORT */
  url: string;
  /** The directory holding `<name>.git`, for serving the same repositories another way. */
  root: string;
  /** Creates `<name>.git` from the files of `dir` (one commit on `main`); returns its URL and SHA. */
  publish(name: string, dir: string): Promise<{ url: string; sha: string }>;
  /** Adds a commit to `<name>.git` writing `files`; optionally tags it. Returns the new SHA. */
  commit(name: string, files: Record<string, string | Buffer>, tag?: string): Promise<string>;
  close(): Promise<void>;
}

export interface GitServerOptions {
  /**
   * Serve repositories only to requests that carry this GitHub App installation token the way
   * GitHub takes it (`Authorization: Basic base64("x-access-token:<token>")`); others get 401.
   */
  requireToken?: string;
}

/**
 * A git server over smart HTTP on loopback: node:http in front of `git http-backend` (CGI),
 * protocol v2 included. Any path that is not a repository answers an HTML page, like a web
 * server that is not a git host.
 */
export async function startGitServer(options: GitServerOptions = {}): Promise<GitServer> {
  const root = await mkdtemp(join(tmpdir(), 'bindery-git-'));
  const expected =
    options.requireToken === undefined
      ? undefined
      : `Basic ${Buffer.from(`x-access-token:${options.requireToken}`).toString('base64')}`;
  const server: Server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    if (!/\.git(\/|$)/.test(url.pathname)) {
      response
        .writeHead(200, { 'content-type': 'text/html' })
        .end('<html><body>Not a git host</body></html>');
      return;
    }
    if (expected !== undefined && request.headers.authorization !== expected) {
      // What GitHub answers a private repository without valid credentials.
      request.resume();
      response
        .writeHead(401, { 'www-authenticate': 'Basic realm="git"', 'content-type': 'text/plain' })
        .end('Authentication required\n');
      return;
    }
    const cgi = spawn('git', ['http-backend'], {
      env: {
        PATH: process.env.PATH,
        GIT_PROJECT_ROOT: root,
        GIT_HTTP_EXPORT_ALL: '1',
        GIT_CONFIG_GLOBAL: '/dev/null',
        PATH_INFO: decodeURIComponent(url.pathname),
        QUERY_STRING: url.search.slice(1),
        REQUEST_METHOD: request.method ?? 'GET',
        CONTENT_TYPE: request.headers['content-type'] ?? '',
        HTTP_CONTENT_ENCODING: request.headers['content-encoding'] ?? '',
        GIT_PROTOCOL: String(request.headers['git-protocol'] ?? ''),
        REMOTE_ADDR: request.socket.remoteAddress ?? '',
      },
    });
    request.pipe(cgi.stdin);
    let head = Buffer.alloc(0);
    let headersDone = false;
    cgi.stdout.on('data', (chunk: Buffer) => {
      if (headersDone) return void response.write(chunk);
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      headersDone = true;
      let status = 200;
      for (const line of head.subarray(0, end).toString().split('\r\n')) {
        const [name, ...rest] = line.split(':');
        const value = rest.join(':').trim();
        if (name!.toLowerCase() === 'status') status = Number(value.split(' ')[0]);
        else response.setHeader(name!, value);
      }
      response.writeHead(status);
      response.write(head.subarray(end + 4));
    });
    cgi.stdout.on('end', () => response.end());
    cgi.on('error', () => response.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const work = (name: string) => join(root, 'work', name);
  const push = async (name: string, ...refs: string[]) => {
    await git(work(name), 'push', '--quiet', '--force', join(root, `${name}.git`), 'main', ...refs);
    return git(work(name), 'rev-parse', 'HEAD');
  };

  return {
    url: base,
    root,
    async publish(name, dir) {
      await cp(dir, work(name), { recursive: true });
      await git(work(name), 'init', '--quiet', '--initial-branch=main');
      await git(work(name), 'add', '--all');
      await git(work(name), 'commit', '--quiet', '-m', 'initial');
      await git(root, 'init', '--quiet', '--bare', '--initial-branch=main', `${name}.git`);
      return { url: `${base}/${name}.git`, sha: await push(name) };
    },
    async commit(name, files, tag) {
      const { writeFile, mkdir } = await import('node:fs/promises');
      for (const [path, content] of Object.entries(files)) {
        await mkdir(join(work(name), path, '..'), { recursive: true });
        await writeFile(join(work(name), path), content);
      }
      await git(work(name), 'add', '--all');
      await git(work(name), 'commit', '--quiet', '-m', `update ${Object.keys(files).join(', ')}`);
      if (tag) await git(work(name), 'tag', '-a', tag, '-m', tag);
      return push(name, ...(tag ? [`refs/tags/${tag}`] : []));
    },
    async close() {
      await new Promise((resolve) => server.close(resolve));
      await rm(root, { recursive: true, force: true });
    },
  };
}
