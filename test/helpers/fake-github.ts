/**
 * GitHub's REST API as far as the Bindery app uses it, with state: check runs, comments,
 * repository files. Tests serve it through nock (api.github.com) or on a loopback HTTP server
 * (a GitHub Enterprise host), and read back every call it received.
 */
export interface RecordedCall {
  method: string;
  /** The path without `/api/v3` or the query. */
  path: string;
  query: URLSearchParams;
  body: Record<string, unknown> | undefined;
}

export interface FakeReply {
  status: number;
  body: unknown;
  headers: Record<string, string>;
}

interface CheckRun {
  id: number;
  name: string;
  head_sha: string;
  status: string;
  conclusion: string | null;
  app: { id: number };
  [field: string]: unknown;
}

interface Comment {
  id: number;
  issue: string;
  body: string;
  user: { login: string; type: string };
}

export interface FakeRepository {
  owner: string;
  name: string;
  private?: boolean;
  defaultBranch?: string;
  /** Branch name → head SHA. */
  branches?: Record<string, string>;
  /** Files of the default branch, served by the contents API (`.github/bindery.yml`). */
  files?: Record<string, string>;
  /**
   * Files at other refs (a branch name or a commit SHA), served when the contents API is
   * asked with `?ref=`. A listed branch without files of its own has the default branch's.
   */
  filesAt?: Record<string, Record<string, string>>;
}

/** One read of the contents API: which file of which repository, at which `ref` if any. */
export interface ContentsRead {
  repository: string;
  path: string;
  /** `?ref=` as sent; undefined reads the default branch, as GitHub does. */
  ref: string | undefined;
}

/** A request GitHub would have refused with 422, and why. */
export interface RejectedCall {
  call: string;
  problems: string[];
}

/** The statuses an app may set; `waiting`, `requested` and `pending` are GitHub Actions' own. */
const CHECK_STATUSES = ['queued', 'in_progress', 'completed'];
/** The conclusions an app may set; only GitHub sets `stale`. */
const CHECK_CONCLUSIONS = [
  'action_required',
  'cancelled',
  'failure',
  'neutral',
  'success',
  'skipped',
  'timed_out',
];
/** The fields of a check run an app may write; GitHub ignores others. */
const CHECK_FIELDS = [
  'name',
  'head_sha',
  'details_url',
  'external_id',
  'status',
  'started_at',
  'conclusion',
  'completed_at',
  'output',
  'actions',
];
/** GitHub's cap on `output.summary` and `output.text`. */
const OUTPUT_TEXT_LIMIT = 65_535;
const ISO_8601 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/**
 * What GitHub would refuse in a check run's create (POST) or update (PATCH) body, after
 * https://docs.github.com/en/rest/checks/runs: `name` and `head_sha` on create; `status` and
 * `conclusion` from the values an app may set; a conclusion with `status: completed` or
 * `completed_at`, and `completed_at` with a conclusion (GitHub's earlier rule: it now fills the
 * time in, and a body that gives it is valid under both); ISO 8601 times; `output` with a
 * `title` and a `summary`, `summary` and `text` at most 65535 characters, at most 50
 * annotations a request; at most 3 actions.
 */
export function checkRunProblems(body: unknown, creating: boolean): string[] {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return ['The body is not a JSON object.'];
  }
  const run = body as Record<string, unknown>;
  const problems: string[] = [];
  const isString = (field: string) => typeof run[field] === 'string';
  for (const field of ['name', 'head_sha']) {
    if (creating && run[field] === undefined) problems.push(`"${field}" wasn't supplied.`);
  }
  for (const field of ['name', 'head_sha', 'details_url', 'external_id']) {
    if (run[field] !== undefined && !isString(field)) {
      problems.push(`For 'properties/${field}', ${JSON.stringify(run[field])} is not a string.`);
    }
  }
  if (isString('name') && (run.name as string).trim() === '') problems.push('"name" is empty.');
  if (isString('head_sha') && !/^[0-9a-f]{40}$/.test(run.head_sha as string)) {
    problems.push(`No commit found for SHA: ${String(run.head_sha)}`);
  }
  if (isString('details_url') && !/^https?:\/\/[^/]/.test(run.details_url as string)) {
    problems.push(`"details_url" is not a URL: ${String(run.details_url)}`);
  }
  if (run.status !== undefined && !CHECK_STATUSES.includes(run.status as string)) {
    problems.push(
      `For 'properties/status', ${JSON.stringify(run.status)} is not a member of enum.`,
    );
  }
  if (run.conclusion !== undefined && !CHECK_CONCLUSIONS.includes(run.conclusion as string)) {
    problems.push(
      `For 'properties/conclusion', ${JSON.stringify(run.conclusion)} is not a member of enum.`,
    );
  }
  if ((run.status === 'completed' || run.completed_at !== undefined) && !run.conclusion) {
    problems.push('"conclusion" wasn\'t supplied.');
  }
  if (run.conclusion !== undefined && run.completed_at === undefined) {
    problems.push('"completed_at" wasn\'t supplied.');
  }
  for (const field of ['started_at', 'completed_at']) {
    if (run[field] !== undefined && !(isString(field) && ISO_8601.test(run[field] as string))) {
      problems.push(`"${field}" is not an ISO 8601 time: ${JSON.stringify(run[field])}`);
    }
  }
  if (run.output !== undefined) {
    const output = run.output as Record<string, unknown> | null;
    if (typeof output !== 'object' || output === null || Array.isArray(output)) {
      problems.push(`For 'properties/output', ${JSON.stringify(output)} is not an object.`);
    } else {
      for (const field of ['title', 'summary']) {
        if (typeof output[field] !== 'string') problems.push(`"output.${field}" wasn't supplied.`);
      }
      if (output.text !== undefined && typeof output.text !== 'string') {
        problems.push(`"output.text" is not a string.`);
      }
      for (const field of ['summary', 'text']) {
        const text = output[field];
        if (typeof text === 'string' && text.length > OUTPUT_TEXT_LIMIT) {
          problems.push(
            `"output.${field}" is too long (${text.length} characters, at most ${OUTPUT_TEXT_LIMIT}).`,
          );
        }
      }
      if (Array.isArray(output.annotations) && output.annotations.length > 50) {
        problems.push('"output.annotations" has more than 50 items.');
      }
    }
  }
  if (Array.isArray(run.actions) && run.actions.length > 3) {
    problems.push('"actions" has more than 3 items.');
  }
  return problems;
}

/** The fields of `body` that GitHub keeps on a check run; a conclusion completes it. */
function checkRunFields(body: Record<string, unknown>): Record<string, unknown> {
  const kept = Object.fromEntries(
    Object.entries(body).filter(([field]) => CHECK_FIELDS.includes(field)),
  );
  return body.conclusion === undefined ? kept : { ...kept, status: 'completed' };
}

export class FakeGitHub {
  readonly calls: RecordedCall[] = [];
  readonly checkRuns: CheckRun[] = [];
  readonly comments: Comment[] = [];
  /** Requests answered 422 because GitHub would have refused them; a test expects none. */
  readonly rejected: RejectedCall[] = [];
  private readonly repositories = new Map<string, FakeRepository>();
  private nextId = 100;
  /** Requests still to be answered with a used-up rate limit. */
  private rateLimited = 0;
  /** Calls (`METHOD /path`) to answer with an error status, and how many times still. */
  private failures = new Map<string, { status: number; count: number }>();
  /** Where the API answers, for pagination links; a GHE server sets its own. */
  apiUrl = 'https://api.github.com';

  constructor(
    readonly appId: number,
    readonly slug = 'bindery-test',
  ) {}

  get botLogin() {
    return `${this.slug}[bot]`;
  }

  addRepository(repository: FakeRepository) {
    this.repositories.set(`${repository.owner}/${repository.name}`, repository);
  }

  /** A comment by someone else on issue `owner/repo#number`, to fill pages. */
  addComment(issue: string, body: string, login = 'octocat') {
    this.comments.push({ id: this.nextId++, issue, body, user: { login, type: 'User' } });
  }

  /** The next `count` requests answer 403 with `x-ratelimit-remaining: 0`, reset in a second. */
  limitRate(count: number) {
    this.rateLimited = count;
  }

  /**
   * The next `count` calls `METHOD /path` (e.g. `POST /repos/o/r/check-runs`) are answered
   * `status` with GitHub's error body, as when it refuses a request or is having a bad moment.
   */
  failNext(call: string, status: number, count = 1) {
    this.failures.set(call, { status, count });
  }

  /** Calls other than authentication (token and `/app`), as `METHOD /path`. */
  get apiCalls(): string[] {
    return this.calls
      .filter((call) => !call.path.startsWith('/app'))
      .map((call) => `${call.method} ${call.path}`);
  }

  /** Every read of the contents API, in order. */
  get contentsReads(): ContentsRead[] {
    return this.calls.flatMap((call) => {
      const match = /^\/repos\/([^/]+\/[^/]+)\/contents\/(.+)$/.exec(call.path);
      return match && call.method === 'GET'
        ? [{ repository: match[1]!, path: match[2]!, ref: call.query.get('ref') ?? undefined }]
        : [];
    });
  }

  /** The files of `repository` at `ref` (the default branch when absent); undefined when no such ref. */
  private filesAt(repository: FakeRepository, ref: string | undefined) {
    const defaultBranch = repository.defaultBranch ?? 'main';
    const name = ref?.replace(/^refs\/heads\//, '');
    const defaultHead = repository.branches?.[defaultBranch];
    if (name === undefined || name === defaultBranch || (defaultHead && name === defaultHead)) {
      return repository.files ?? {};
    }
    const own = repository.filesAt?.[name];
    if (own) return own;
    return repository.branches?.[name] === undefined ? undefined : (repository.files ?? {});
  }

  commentsOn(issue: string) {
    return this.comments.filter(
      (comment) => comment.issue === issue && comment.user.type === 'Bot',
    );
  }

  handle(method: string, url: string, rawBody: string | undefined): FakeReply {
    const parsed = new URL(url, 'http://github.test');
    const path = decodeURIComponent(parsed.pathname.replace(/^\/api\/v3/, ''));
    const body = rawBody ? (JSON.parse(rawBody) as Record<string, unknown>) : undefined;
    this.calls.push({ method, path, query: parsed.searchParams, body });
    if (this.rateLimited > 0) {
      this.rateLimited -= 1;
      return {
        status: 403,
        body: { message: 'API rate limit exceeded' },
        headers: {
          'x-ratelimit-remaining': '0',
          'x-ratelimit-reset': String(Math.floor(Date.now() / 1000) + 1),
        },
      };
    }
    const failure = this.failures.get(`${method} ${path}`);
    if (failure && failure.count > 0) {
      failure.count -= 1;
      return {
        status: failure.status,
        body: {
          message: failure.status >= 500 ? 'Server Error' : 'Validation Failed',
          documentation_url: 'https://docs.github.com/rest',
        },
        headers: { 'content-type': 'application/json; charset=utf-8' },
      };
    }
    const json = (status: number, value: unknown, headers: Record<string, string> = {}) => ({
      status,
      body: value,
      headers: { 'content-type': 'application/json; charset=utf-8', ...headers },
    });
    const notFound = () => json(404, { message: 'Not Found' });
    /** GitHub's answer to a body it refuses, kept for the test to see. */
    const invalid = (problems: string[], documented: string) => {
      this.rejected.push({ call: `${method} ${path}`, problems });
      return json(422, {
        message: `Invalid request.\n\n${problems.join('\n')}`,
        documentation_url: `https://docs.github.com/rest/checks/runs#${documented}`,
      });
    };
    let match: RegExpMatchArray | null;

    if ((match = path.match(/^\/app\/installations\/(\d+)\/access_tokens$/)) && method === 'POST') {
      return json(201, {
        token: `ghs_fake_installation_${match[1]}`,
        expires_at: new Date(Date.now() + 3_600_000).toISOString(),
        permissions: { checks: 'write', contents: 'read', pull_requests: 'write' },
        repository_selection: 'all',
      });
    }
    if (path === '/app' && method === 'GET') return json(200, { id: this.appId, slug: this.slug });

    match = path.match(/^\/repos\/([^/]+)\/([^/]+)(\/.*)?$/);
    if (!match) return notFound();
    const [, owner, name, rest = ''] = match;
    const repository = this.repositories.get(`${owner}/${name}`);
    if (!repository) return notFound();

    if (rest === '' && method === 'GET') {
      return json(200, {
        name,
        full_name: `${owner}/${name}`,
        private: repository.private ?? false,
        default_branch: repository.defaultBranch ?? 'main',
        owner: { login: owner },
      });
    }
    if ((match = rest.match(/^\/branches\/(.+)$/)) && method === 'GET') {
      const sha = repository.branches?.[match[1]!];
      return sha ? json(200, { name: match[1], commit: { sha } }) : notFound();
    }
    if ((match = rest.match(/^\/contents\/(.+)$/)) && method === 'GET') {
      const ref = parsed.searchParams.get('ref') ?? undefined;
      const files = this.filesAt(repository, ref);
      if (!files) return json(404, { message: `No commit found for the ref ${ref}` });
      const file = files[match[1]!];
      return file === undefined
        ? notFound()
        : { status: 200, body: file, headers: { 'content-type': 'text/plain; charset=utf-8' } };
    }
    if ((match = rest.match(/^\/commits\/([^/]+)$/)) && method === 'GET') {
      // How Bindery resolves a `gh` ref (accept: application/vnd.github.sha): the commit's SHA.
      const ref = match[1]!;
      const sha = /^[0-9a-f]{40}$/.test(ref) ? ref : repository.branches?.[ref];
      return sha
        ? { status: 200, body: sha, headers: { 'content-type': 'application/vnd.github.sha' } }
        : json(422, { message: `No commit found for SHA: ${ref}` });
    }
    if ((match = rest.match(/^\/commits\/([0-9a-f]{40})\/check-runs$/)) && method === 'GET') {
      const runs = this.checkRuns
        .filter(
          (run) =>
            run.head_sha === match![1] &&
            run.name === (parsed.searchParams.get('check_name') ?? run.name) &&
            String(run.app.id) === (parsed.searchParams.get('app_id') ?? String(run.app.id)),
        )
        .reverse();
      return json(200, { total_count: runs.length, check_runs: runs });
    }
    if (rest === '/check-runs' && method === 'POST') {
      const problems = checkRunProblems(body, true);
      if (problems.length > 0) return invalid(problems, 'create-a-check-run');
      const run: CheckRun = {
        status: 'queued',
        conclusion: null,
        ...checkRunFields(body!),
        id: this.nextId++,
        app: { id: this.appId },
      } as CheckRun;
      this.checkRuns.push(run);
      return json(201, run);
    }
    if ((match = rest.match(/^\/check-runs\/(\d+)$/)) && method === 'PATCH') {
      const run = this.checkRuns.find((r) => r.id === Number(match![1]));
      if (!run) return notFound();
      const problems = checkRunProblems(body, false);
      if (problems.length > 0) return invalid(problems, 'update-a-check-run');
      Object.assign(run, checkRunFields(body!));
      return json(200, run);
    }
    if ((match = rest.match(/^\/issues\/(\d+)\/comments$/))) {
      const issue = `${owner}/${name}#${match[1]}`;
      if (method === 'POST') {
        const comment: Comment = {
          id: this.nextId++,
          issue,
          body: String(body?.body ?? ''),
          user: { login: this.botLogin, type: 'Bot' },
        };
        this.comments.push(comment);
        return json(201, comment);
      }
      const all = this.comments.filter((comment) => comment.issue === issue);
      const perPage = Number(parsed.searchParams.get('per_page') ?? 30);
      const page = Number(parsed.searchParams.get('page') ?? 1);
      const headers: Record<string, string> = {};
      if (page * perPage < all.length) {
        const next = new URL(`${this.apiUrl}${parsed.pathname.replace(/^\/api\/v3/, '')}`);
        next.searchParams.set('per_page', String(perPage));
        next.searchParams.set('page', String(page + 1));
        headers.link = `<${next.href}>; rel="next"`;
      }
      return json(200, all.slice((page - 1) * perPage, page * perPage), headers);
    }
    if ((match = rest.match(/^\/issues\/comments\/(\d+)$/)) && method === 'PATCH') {
      const comment = this.comments.find((c) => c.id === Number(match![1]));
      if (!comment) return notFound();
      comment.body = String(body?.body ?? '');
      return json(200, comment);
    }
    return notFound();
  }
}
