/** One message of the build event stream, parsed from its `data:` JSON. */
export type BuildEvent = Record<string, unknown> & { phase: string; message?: string };

/**
 * The messages of a server-sent event stream as they arrive: `data:` lines joined and parsed
 * as JSON, comments (the keep-alives) skipped. Ends when the stream ends; throws when it breaks.
 */
export async function* readEventStream(
  body: AsyncIterable<Uint8Array>,
): AsyncGenerator<BuildEvent> {
  const decoder = new TextDecoder();
  let buffered = '';
  for await (const chunk of body) {
    buffered += decoder.decode(chunk, { stream: true }).replace(/\r\n?/g, '\n');
    let end: number;
    while ((end = buffered.indexOf('\n\n')) >= 0) {
      const block = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      const data = block
        .split('\n')
        .filter((line) => line.startsWith('data:'))
        .map((line) => line.slice(5).replace(/^ /, ''))
        .join('\n');
      if (!data) continue;
      const event = JSON.parse(data) as BuildEvent;
      if (typeof event.phase === 'string') yield event;
    }
  }
}
