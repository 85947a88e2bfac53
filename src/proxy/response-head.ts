/** The start of an HTTP/1.x response as read off a socket, for the WebSocket tunnel. */
export interface ResponseHead {
  /** `HTTP/1.1 101 Switching Protocols`, without its line end. */
  statusLine: string;
  /** `[name, value, …]` in the order sent, folded lines joined. */
  rawHeaders: string[];
  /** Bytes after the head: the start of the body or of WebSocket frames. */
  rest: Buffer;
}

/** A session's answer to an upgrade may not have a head longer than this. */
export const MAX_RESPONSE_HEAD = 64 * 1024;

const STATUS_LINE = /^HTTP\/1\.[01] \d{3}(?: [^\r\n\0]*)?$/;
const HEADER_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*([^\r\n\0]*?)[ \t]*$/;

/**
 * Where the head ends, as a browser finds it: the first empty line, whether lines end in CRLF
 * or a bare LF (Chromium's HttpUtil::LocateEndOfHeaders). -1 while it has not come yet.
 */
function endOfHead(buffer: Buffer): number {
  for (let i = buffer.indexOf(10); i >= 0; i = buffer.indexOf(10, i + 1)) {
    if (buffer[i + 1] === 10) return i + 2;
    if (buffer[i + 1] === 13 && buffer[i + 2] === 10) return i + 3;
  }
  return -1;
}

/**
 * Reads a response head from the bytes received so far: undefined while incomplete, `invalid`
 * when it is not one this proxy can pass on faithfully (a bare CR, NUL, a line that is not a
 * header). Read strictly, so that what the proxy checks is what the browser will see.
 */
export function parseResponseHead(buffer: Buffer): ResponseHead | 'invalid' | undefined {
  const end = endOfHead(buffer);
  if (end < 0) return buffer.length > MAX_RESPONSE_HEAD ? 'invalid' : undefined;
  if (end > MAX_RESPONSE_HEAD) return 'invalid';
  const lines = buffer
    .subarray(0, end)
    .toString('latin1')
    .split('\n')
    .map((line) => line.replace(/\r$/, ''));
  lines.splice(-2); // the empty line and what follows its LF
  const statusLine = lines.shift() ?? '';
  if (!STATUS_LINE.test(statusLine)) return 'invalid';
  const rawHeaders: string[] = [];
  for (const line of lines) {
    if (/^[ \t]/.test(line)) {
      // obs-fold (RFC 9112 §5.2): a continuation of the previous value, joined with a space.
      if (rawHeaders.length === 0 || /[\r\0]/.test(line)) return 'invalid';
      rawHeaders[rawHeaders.length - 1] += ` ${line.trim()}`;
      continue;
    }
    const match = HEADER_LINE.exec(line);
    if (!match) return 'invalid';
    rawHeaders.push(match[1]!, match[2]!);
  }
  return { statusLine, rawHeaders, rest: buffer.subarray(end) };
}

/** The head as CRLF lines, ready to write to the client. */
export function serializeResponseHead(statusLine: string, rawHeaders: readonly string[]): string {
  let text = `${statusLine}\r\n`;
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    text += `${rawHeaders[i]}: ${rawHeaders[i + 1]}\r\n`;
  }
  return `${text}\r\n`;
}
