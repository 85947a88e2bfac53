import { describe, expect, it } from '@jest/globals';
import {
  MAX_RESPONSE_HEAD,
  parseResponseHead,
  serializeResponseHead,
} from '../../src/proxy/response-head.js';

const parse = (text: string) => parseResponseHead(Buffer.from(text, 'latin1'));

describe('parseResponseHead', () => {
  it('waits for the empty line, then reads the head and keeps what follows', () => {
    expect(parse('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n')).toBeUndefined();
    const head = parse(
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade:  websocket \r\nA:\r\n\r\n\x81\x00',
    );
    expect(head).toEqual({
      statusLine: 'HTTP/1.1 101 Switching Protocols',
      rawHeaders: ['Upgrade', 'websocket', 'A', ''],
      rest: Buffer.from('\x81\x00', 'latin1'),
    });
  });

  it('ends the head where a browser does: bare LF lines too', () => {
    expect(parse('HTTP/1.1 101 OK\nSet-Cookie: a=1\n\nrest')).toMatchObject({
      rawHeaders: ['Set-Cookie', 'a=1'],
      rest: Buffer.from('rest'),
    });
    expect(parse('HTTP/1.1 101 OK\nX: 1\n\r\n')).toMatchObject({ rawHeaders: ['X', '1'] });
  });

  it('joins folded lines into the header they continue', () => {
    expect(
      parse('HTTP/1.1 101 OK\r\nSet-Cookie: a=1\r\n ; Path=/\r\n\t; Secure\r\n\r\n'),
    ).toMatchObject({
      rawHeaders: ['Set-Cookie', 'a=1 ; Path=/ ; Secure'],
    });
  });

  it.each([
    ['a bare CR', 'HTTP/1.1 101 OK\r\nX: y\rSet-Cookie: a=1\r\n\r\n'],
    ['a NUL', 'HTTP/1.1 101 OK\r\nX: y\0z\r\n\r\n'],
    ['a line without a colon', 'HTTP/1.1 101 OK\r\nnonsense\r\n\r\n'],
    ['a space before the colon', 'HTTP/1.1 101 OK\r\nSet-Cookie : a=1\r\n\r\n'],
    ['a fold with nothing to continue', 'HTTP/1.1 101 OK\r\n x\r\n\r\n'],
    ['no status line', 'hello\r\n\r\n'],
    ['HTTP/2', 'HTTP/2 101\r\n\r\n'],
  ])('refuses %s', (_what, text) => expect(parse(text)).toBe('invalid'));

  it('refuses a head longer than the limit, complete or not', () => {
    const long = `HTTP/1.1 101 OK\r\nX: ${'a'.repeat(MAX_RESPONSE_HEAD)}`;
    expect(parse(long)).toBe('invalid');
    expect(parse(`${long}\r\n\r\n`)).toBe('invalid');
  });
});

describe('serializeResponseHead', () => {
  it('writes CRLF lines and the empty line', () => {
    expect(serializeResponseHead('HTTP/1.1 101 OK', ['A', '1', 'B', ''])).toBe(
      'HTTP/1.1 101 OK\r\nA: 1\r\nB: \r\n\r\n',
    );
  });
});
