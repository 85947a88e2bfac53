import { describe, expect, it } from '@jest/globals';
import { FakeGitHub } from '../helpers/fake-github.js';

/**
 * The fake GitHub is what the app's tests trust to refuse what GitHub refuses and to serve a
 * file as it is at the ref asked for; a fake that accepts anything lets those tests pass
 * whatever the app sends.
 */
const SHA = 'a'.repeat(40);
const PR_HEAD = 'b'.repeat(40);
const NOW = '2026-12-02T02:00:00.000Z';
const OUTPUT = { title: 'Built in 3 s', summary: 'Built the image.' };

function fake() {
  const github = new FakeGitHub(1);
  github.addRepository({
    owner: 'o',
    name: 'r',
    defaultBranch: 'main',
    branches: { main: SHA, feature: PR_HEAD, copy: SHA },
    files: { '.github/bindery.yml': 'forks: false\n' },
    filesAt: { [PR_HEAD]: { '.github/bindery.yml': 'forks: true\n' } },
  });
  return github;
}

const send = (github: FakeGitHub, method: string, path: string, body?: unknown) =>
  github.handle(method, `/repos/o/r${path}`, body === undefined ? undefined : JSON.stringify(body));

/** A created check run's id, for updates. */
function created(github: FakeGitHub): number {
  const reply = send(github, 'POST', '/check-runs', { name: 'Bindery', head_sha: SHA });
  expect(reply.status).toBe(201);
  return (reply.body as { id: number }).id;
}

describe('the fake GitHub contents API', () => {
  it('serves the default branch without ?ref=, and the file at the ref asked for with it', () => {
    const github = fake();
    const read = (query: string) => send(github, 'GET', `/contents/.github/bindery.yml${query}`);
    expect(read('')).toMatchObject({ status: 200, body: 'forks: false\n' });
    expect(read('?ref=main')).toMatchObject({ status: 200, body: 'forks: false\n' });
    expect(read(`?ref=${SHA}`)).toMatchObject({ status: 200, body: 'forks: false\n' });
    expect(read(`?ref=${PR_HEAD}`)).toMatchObject({ status: 200, body: 'forks: true\n' });
    // A branch without files of its own has the default branch's.
    expect(read('?ref=copy')).toMatchObject({ status: 200, body: 'forks: false\n' });
    expect(read('?ref=nowhere')).toMatchObject({
      status: 404,
      body: { message: 'No commit found for the ref nowhere' },
    });
    expect(github.contentsReads.map((r) => r.ref)).toEqual([
      undefined,
      'main',
      SHA,
      PR_HEAD,
      'copy',
      'nowhere',
    ]);
    expect(github.contentsReads[0]).toEqual({
      repository: 'o/r',
      path: '.github/bindery.yml',
      ref: undefined,
    });
  });
});

describe('the fake GitHub check runs API', () => {
  it('creates and completes a check run from valid bodies, keeping only check run fields', () => {
    const github = fake();
    const id = created(github);
    expect(github.checkRuns[0]).toMatchObject({ status: 'queued', conclusion: null });
    const reply = send(github, 'PATCH', `/check-runs/${id}`, {
      conclusion: 'success',
      completed_at: NOW,
      output: { ...OUTPUT, text: 'x'.repeat(65_535) },
      owner: 'o',
    });
    expect(reply.status).toBe(200);
    // A conclusion completes the run, as on GitHub.
    expect(github.checkRuns[0]).toMatchObject({ status: 'completed', conclusion: 'success' });
    expect(github.checkRuns[0]).not.toHaveProperty('owner');
    expect(github.rejected).toEqual([]);
  });

  it.each([
    ['no head_sha', { name: 'Bindery' }, '"head_sha" wasn\'t supplied.'],
    ['no name', { head_sha: SHA }, '"name" wasn\'t supplied.'],
    ['a head_sha that is no commit', { name: 'Bindery', head_sha: 'main' }, 'No commit found'],
    ['a status only Actions may set', { status: 'pending' }, 'not a member of enum'],
    ['a conclusion only GitHub may set', { conclusion: 'stale' }, 'not a member of enum'],
    ['status completed without a conclusion', { status: 'completed' }, '"conclusion" wasn\'t'],
    ['completed_at without a conclusion', { completed_at: NOW }, '"conclusion" wasn\'t'],
    ['a conclusion without completed_at', { conclusion: 'success' }, '"completed_at" wasn\'t'],
    ['a time that is not ISO 8601', { started_at: 'yesterday' }, 'not an ISO 8601 time'],
    ['output without a summary', { output: { title: 'Built' } }, '"output.summary" wasn\'t'],
    ['output without a title', { output: { summary: 'Built.' } }, '"output.title" wasn\'t'],
    [
      'a summary past 65535 characters',
      { output: { title: 'Built', summary: 'x'.repeat(65_536) } },
      '"output.summary" is too long',
    ],
    [
      'a text past 65535 characters',
      { output: { ...OUTPUT, text: 'x'.repeat(65_536) } },
      '"output.text" is too long',
    ],
    ['a details_url that is no URL', { details_url: '/logs/x' }, '"details_url" is not a URL'],
  ])('answers 422 like GitHub to %s, and changes nothing', (_case, fields, problem) => {
    const github = fake();
    const id = created(github);
    const before = structuredClone(github.checkRuns);
    // Creation fields go into a create; the rest into both a create and an update.
    const creating = 'name' in fields || 'head_sha' in fields;
    const replies = creating
      ? [send(github, 'POST', '/check-runs', fields)]
      : [
          send(github, 'POST', '/check-runs', { name: 'Bindery', head_sha: SHA, ...fields }),
          send(github, 'PATCH', `/check-runs/${id}`, fields),
        ];
    for (const reply of replies) {
      expect(reply.status).toBe(422);
      expect((reply.body as { message: string }).message).toContain(problem);
    }
    expect(github.rejected).toHaveLength(replies.length);
    expect(github.checkRuns).toEqual(before);
  });
});
