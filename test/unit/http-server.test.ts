import { describe, expect, test } from '@jest/globals';
import { connect, type AddressInfo } from 'node:net';
import { once } from 'node:events';
import { createHttpServer } from '../../src/web/http-server.js';

/** Sends `GET /` on `socket` and resolves with what came back within `ms` ('' for nothing). */
async function ask(socket: ReturnType<typeof connect>, ms: number): Promise<string> {
  let answer = '';
  const onData = (chunk: Buffer) => (answer += chunk.toString());
  socket.on('data', onData);
  socket.write('GET / HTTP/1.1\r\nHost: bindery\r\n\r\n');
  const deadline = Date.now() + ms;
  while (!answer.includes('\r\n\r\nok') && !socket.destroyed && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  socket.off('data', onData);
  return answer;
}

describe('createHttpServer', () => {
  test('keeps an idle keep-alive connection past Node’s 5 s, so a client reusing it gets an answer', async () => {
    const server = createHttpServer((_request, response) => response.end('ok'));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const socket = connect((server.address() as AddressInfo).port, '127.0.0.1');
    try {
      await once(socket, 'connect');
      expect(await ask(socket, 5_000)).toMatch(/^HTTP\/1.1 200 OK[\s\S]*keep-alive[\s\S]*ok$/i);
      // Idle longer than Node's default keepAliveTimeout, then the same connection again.
      await new Promise((resolve) => setTimeout(resolve, 6_000));
      expect(socket.destroyed || socket.readableEnded).toBe(false);
      expect(await ask(socket, 5_000)).toMatch(/^HTTP\/1.1 200 OK/);
    } finally {
      socket.destroy();
      server.closeAllConnections();
      server.close();
    }
  }, 20_000);
});
