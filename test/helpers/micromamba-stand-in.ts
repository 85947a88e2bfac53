import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { createGzip } from 'node:zlib';
import { pack } from 'tar-fs';

const STAND_IN = fileURLToPath(new URL('../fixtures/micromamba-stand-in/', import.meta.url));
/** Where the stand-in is served, the path of the real download (micro.mamba.pm). */
export const MICROMAMBA_PATH = '/api/micromamba/linux-64/latest';

export interface StandInServer {
  url: string;
  /** Every path requested so far, in order. */
  requests: string[];
  close(): Promise<void>;
}

/**
 * Serves test/fixtures/micromamba-stand-in as the micromamba download: a tarball holding
 * bin/micromamba, which here is a STAND-IN script, not micromamba (neither it nor conda's
 * channels can be reached from these machines): it makes an isolated Python environment and
 * pip-installs what the environment file lists. It lets the conda fixtures prove what the
 * rendered Dockerfile does around micromamba, not conda itself. The real download is bzip2; the
 * fetcher opens any tar compression, and gzip is what Node has.
 */
export async function serveMicromambaStandIn(host: string): Promise<StandInServer> {
  const chunks: Buffer[] = [];
  for await (const chunk of pack(STAND_IN).pipe(createGzip())) {
    chunks.push(chunk as Buffer);
  }
  const tarball = Buffer.concat(chunks);
  const requests: string[] = [];
  const server = createServer((request, response) => {
    requests.push(request.url ?? '');
    if (request.url !== MICROMAMBA_PATH) {
      response.writeHead(404).end();
      return;
    }
    response
      .writeHead(200, { 'content-type': 'application/x-tar', 'content-length': tarball.length })
      .end(tarball);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${port}${MICROMAMBA_PATH}`,
    requests,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}
