/** A message of a server-sent event stream, parsed from its `data:` JSON. */
export type StreamEvent = Record<string, unknown> & { phase: string };

/**
 * Reads `url` as an EventSource would (`Accept: text/event-stream`, `data:` lines, comments
 * ignored) until the stream ends, returning every message in order. `onEvent` sees each as it
 * arrives.
 */
export async function readEventStream(
  url: string,
  options: {
    headers?: Record<string, string>;
    onEvent?: (event: StreamEvent) => void;
    signal?: AbortSignal;
  } = {},
): Promise<{ status: number; events: StreamEvent[]; comments: number }> {
  const response = await fetch(url, {
    headers: { accept: 'text/event-stream', ...options.headers },
    signal: options.signal,
  });
  const events: StreamEvent[] = [];
  let comments = 0;
  if (!response.body) return { status: response.status, events, comments };
  const decoder = new TextDecoder();
  let buffered = '';
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    buffered += decoder.decode(chunk, { stream: true });
    let end: number;
    while ((end = buffered.indexOf('\n\n')) >= 0) {
      const block = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      const data = block
        .split('\n')
        .filter((line) => {
          if (line.startsWith(':')) comments++;
          return line.startsWith('data:');
        })
        .map((line) => line.slice(5).trimStart())
        .join('\n');
      if (!data) continue;
      const event = JSON.parse(data) as StreamEvent;
      events.push(event);
      options.onEvent?.(event);
    }
  }
  return { status: response.status, events, comments };
}
