import examples from '@octokit/webhooks-examples' with { type: 'json' };

/**
 * A webhook payload as tests use it: GitHub's JSON, which tests edit field by field (a fork's
 * head, a private flag). Typing each nested field would restate GitHub's schema.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see above
export type Payload = Record<string, any>;

/** The first example of `event` from @octokit/webhooks-examples that `pick` accepts, deep-copied. */
export function webhookExample(event: string, pick: (payload: Payload) => boolean): Payload {
  const found = (examples as unknown as { name: string; examples: Payload[] }[])
    .find((entry) => entry.name === event)
    ?.examples.find(pick);
  if (!found) throw new Error(`@octokit/webhooks-examples has no ${event} example that matches`);
  return structuredClone(found);
}
