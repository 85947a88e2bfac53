import { randomUUID } from 'node:crypto';
import { stripVTControlCharacters } from 'node:util';
import WebSocket from 'ws';

/** What a cell printed and how it ended, as a notebook shows it. */
export interface CellResult {
  status: 'ok' | 'error' | 'abort';
  /** stdout and stderr, in order. */
  output: string;
  /** `ename: evalue` of an error, with its traceback's last line. */
  error?: string;
  /** MIME types of the rich outputs (display_data, execute_result), e.g. `image/png`. */
  mimeTypes: string[];
}

interface Message {
  header: { msg_id: string; msg_type: string };
  parent_header: { msg_id?: string };
  content: Record<string, unknown>;
  channel?: string;
}

/**
 * Runs `code` in a new kernel of the Jupyter server at `serverUrl` (ending in `/`), the way
 * JupyterLab does: `POST api/kernels` (the server's default kernel unless `kernelName`), then
 * an `execute_request` over the kernel's WebSocket; it resolves when the kernel reports `idle`
 * for that request, and the kernel is shut down after.
 */
export async function runInKernel(
  serverUrl: string,
  token: string,
  code: string,
  options: { kernelName?: string; timeoutMs?: number } = {},
): Promise<CellResult> {
  const headers = { Authorization: `token ${token}`, 'Content-Type': 'application/json' };
  const created = await fetch(`${serverUrl}api/kernels`, {
    method: 'POST',
    headers,
    body: JSON.stringify(options.kernelName ? { name: options.kernelName } : {}),
  });
  if (created.status !== 201) {
    throw new Error(`POST api/kernels answered ${created.status}: ${await created.text()}`);
  }
  const { id } = (await created.json()) as { id: string };
  try {
    return await execute(serverUrl, token, id, code, options.timeoutMs ?? 120_000);
  } finally {
    await fetch(`${serverUrl}api/kernels/${id}`, { method: 'DELETE', headers });
  }
}

function execute(
  serverUrl: string,
  token: string,
  kernelId: string,
  code: string,
  timeoutMs: number,
): Promise<CellResult> {
  const url = new URL(`api/kernels/${kernelId}/channels`, serverUrl);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  url.searchParams.set('session_id', randomUUID());
  const socket = new WebSocket(url, { headers: { Authorization: `token ${token}` } });
  const msgId = randomUUID();
  const result: CellResult = { status: 'ok', output: '', mimeTypes: [] };
  let replied = false;
  let idle = false;
  return new Promise<CellResult>((resolve, reject) => {
    const timer = setTimeout(
      () => finish(new Error(`no idle status within ${timeoutMs} ms; so far: ${result.output}`)),
      timeoutMs,
    );
    const finish = (error?: Error) => {
      clearTimeout(timer);
      socket.close();
      if (error) reject(error);
      else resolve(result);
    };
    socket.on('error', finish);
    socket.on('open', () => {
      socket.send(
        JSON.stringify({
          header: {
            msg_id: msgId,
            msg_type: 'execute_request',
            username: 'bindery-test',
            session: randomUUID(),
            date: new Date().toISOString(),
            version: '5.3',
          },
          parent_header: {},
          metadata: {},
          content: {
            code,
            silent: false,
            store_history: false,
            user_expressions: {},
            allow_stdin: false,
            stop_on_error: true,
          },
          channel: 'shell',
        }),
      );
    });
    socket.on('message', (data) => {
      const message = JSON.parse(String(data)) as Message;
      if (message.parent_header.msg_id !== msgId) return;
      const { content } = message;
      switch (message.header.msg_type) {
        case 'stream':
          result.output += String(content.text);
          break;
        case 'display_data':
        case 'execute_result':
          result.mimeTypes.push(...Object.keys(content.data as object));
          break;
        case 'error': {
          const traceback = (content.traceback as string[]).join('\n');
          result.error = `${content.ename}: ${content.evalue}\n${stripVTControlCharacters(traceback)}`;
          break;
        }
        case 'execute_reply':
          result.status = content.status as CellResult['status'];
          replied = true;
          break;
        case 'status':
          idle = content.execution_state === 'idle';
          break;
      }
      // Output ends with the idle status on iopub; the reply may come before or after it.
      if (replied && idle) finish();
    });
  });
}

/**
 * Types `command` into a new terminal of the Jupyter server at `serverUrl`, as a person does in
 * JupyterLab (`POST api/terminals`, then terminado's WebSocket), and resolves with what the
 * terminal printed once `until` matches it.
 */
export async function runInTerminal(
  serverUrl: string,
  token: string,
  command: string,
  until: RegExp,
  timeoutMs = 60_000,
): Promise<string> {
  const headers = { Authorization: `token ${token}` };
  const created = await fetch(`${serverUrl}api/terminals`, { method: 'POST', headers });
  if (!created.ok) throw new Error(`POST api/terminals answered ${created.status}`);
  const { name } = (await created.json()) as { name: string };
  const url = new URL(`terminals/websocket/${name}`, serverUrl);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  const socket = new WebSocket(url, { headers });
  let screen = '';
  try {
    return await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`the terminal never printed ${until}; it showed:\n${screen}`)),
        timeoutMs,
      );
      socket.on('error', reject);
      socket.on('open', () => socket.send(JSON.stringify(['stdin', `${command}\r`])));
      socket.on('message', (data) => {
        const [kind, text] = JSON.parse(String(data)) as [string, string];
        if (kind !== 'stdout') return;
        screen += stripVTControlCharacters(text);
        if (until.test(screen)) {
          clearTimeout(timer);
          resolve(screen);
        }
      });
    });
  } finally {
    socket.close();
    await fetch(`${serverUrl}api/terminals/${name}`, { method: 'DELETE', headers });
  }
}
