import { describe, expect, it } from '@jest/globals';
import type { Request, Response } from 'express';
import { healthRoute } from '../../src/web/health-route.js';

/** A health route over stand-ins that count their checks; `fail` makes the sandbox's fail. */
function standIns() {
  const state = {
    runs: 0,
    fail: false,
    release: undefined as (() => void) | undefined,
    hold: false,
    /** Problems of a check that still lets sessions start (a Swarm node set aside). */
    warnings: [] as string[],
  };
  const deps = {
    engine: { ping: async () => undefined },
    redis: { ping: async () => 'PONG' },
    sandbox: {
      check: async () => {
        state.runs++;
        if (state.hold) await new Promise<void>((resolve) => (state.release = resolve));
        return {
          ok: !state.fail,
          problems: state.fail ? ['DOCKER-USER lacks a rule'] : state.warnings,
        };
      },
    },
  } as unknown as Parameters<typeof healthRoute>[0];
  return { deps, state };
}

async function ask(route: ReturnType<typeof healthRoute>) {
  const answer = { status: 0, body: undefined as unknown };
  const response = {
    status(code: number) {
      answer.status = code;
      return this;
    },
    set() {
      return this;
    },
    json(body: unknown) {
      answer.body = body;
      return this;
    },
  } as unknown as Response;
  await route({} as Request, response);
  return answer;
}

describe('healthRoute', () => {
  it('runs the checks once for any number of probes within a second', async () => {
    let now = 0;
    const { deps, state } = standIns();
    const route = healthRoute(deps, () => now);
    const answers = await Promise.all(Array.from({ length: 100 }, () => ask(route)));
    expect(state.runs).toBe(1);
    expect(answers.every((answer) => answer.status === 200)).toBe(true);
    now = 999;
    await ask(route);
    expect(state.runs).toBe(1);
  });

  it('answers from the last run while the next one is under way, then from the new one', async () => {
    let now = 0;
    const { deps, state } = standIns();
    const route = healthRoute(deps, () => now);
    await ask(route);
    now = 1_500;
    state.fail = true;
    state.hold = true;
    // The refresh has started and waits on the sandbox; the probe gets the previous answer.
    expect((await ask(route)).status).toBe(200);
    expect(state.runs).toBe(2);
    state.release!();
    await new Promise((resolve) => setImmediate(resolve));
    const failed = await ask(route);
    expect(failed.status).toBe(503);
    expect(failed.body).toMatchObject({
      ok: false,
      checks: [
        { service: 'Docker' },
        { service: 'Redis' },
        { service: 'Sandbox', ok: false, message: 'DOCKER-USER lacks a rule' },
      ],
    });
  });

  it('stays 200 with a node set aside by the sandbox, and names it', async () => {
    const { deps, state } = standIns();
    state.warnings = ['node n2: DOCKER-USER lacks: -i bindery0 -j BINDERY-bindery0'];
    const answer = await ask(healthRoute(deps));
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({
      ok: true,
      checks: [
        { service: 'Docker', ok: true },
        { service: 'Redis', ok: true },
        { service: 'Sandbox', ok: true, warnings: state.warnings },
      ],
    });
    expect((answer.body as { checks: object[] }).checks[0]).not.toHaveProperty('warnings');
  });

  it('makes a probe wait for the checks when the last answer is over 10 s old', async () => {
    let now = 0;
    const { deps, state } = standIns();
    const route = healthRoute(deps, () => now);
    await ask(route);
    now = 10_000;
    state.fail = true;
    expect((await ask(route)).status).toBe(503);
  });
});
