/** Polls `condition` until it holds, failing after `timeoutMs` with what it was waiting for. */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  what = 'the condition',
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline)
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/**
 * Waits until the service at `url` answers `/health` with 200 (a deployment starting its
 * containers); on timeout, fails with `explain()`: the containers' logs.
 */
export async function waitForHealthy(
  url: string,
  what: string,
  timeoutMs: number,
  explain: () => Promise<string>,
): Promise<void> {
  await waitFor(
    async () => (await fetch(`${url}/health`).catch(() => undefined))?.status === 200,
    `${what} to be healthy`,
    timeoutMs,
  ).catch(async (error: Error) => {
    throw new Error(`${error.message}; ${await explain()}`);
  });
}
