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
  /** Files served by the contents API (`.github/bindery.yml`). */
  files?: Record<string, string>;
}

export class FakeGitHub {
  readonly calls: RecordedCall[] = [];
  readonly checkRuns: CheckRun[] = [];
  readonly comments: Comment[] = [];
  private readonly repositories = new Map<string, FakeRepository>();
  private nextId = 100;
  /** Requests still to be answered with a used-up rate limit. */
  private rateLimited = 0;
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

  /** Calls other than authentication (token and `/app`), as `METHOD /path`. */
  get apiCalls(): string[] {
    return this.calls
      .filter((call) => !call.path.startsWith('/app'))
      .map((call) => `${call.method} ${call.path}`);
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
    const json = (status: number, value: unknown, headers: Record<string, string> = {}) => ({
      status,
      body: value,
      headers: { 'content-type': 'application/json; charset=utf-8', ...headers },
    });
    const notFound = () => json(404, { message: 'Not Found' });
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
      const file = repository.files?.[match[1]!];
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
      const run: CheckRun = {
        conclusion: null,
        ...(body as object),
        id: this.nextId++,
        app: { id: this.appId },
      } as CheckRun;
      this.checkRuns.push(run);
      return json(201, run);
    }
    if ((match = rest.match(/^\/check-runs\/(\d+)$/)) && method === 'PATCH') {
      const run = this.checkRuns.find((r) => r.id === Number(match![1]));
      if (!run) return notFound();
      Object.assign(run, body);
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
