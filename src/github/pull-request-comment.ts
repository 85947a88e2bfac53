import type { InstallationOctokit } from './github-app.js';

/** How the app finds its own comment again: this hidden marker, in a comment by its bot account. */
export const COMMENT_MARKER = '<!-- bindery:launch-badge';

export type CommentState = 'building' | 'built' | 'failed';

export interface CommentContent {
  publicUrl: string;
  githubUrl: string;
  owner: string;
  repo: string;
  sha: string;
  state: CommentState;
  /** The pull request's branch and the `owner/repo` holding it, for a launch link that follows it. */
  branch?: { name: string; repo: string };
  /** The build log page (public repositories). */
  logUrl?: string;
  private: boolean;
  /**
   * Sign-in is on (GITHUB_CLIENT_ID/SECRET): a private repository launches for the people who
   * can read it, and its links go through "Sign in with GitHub".
   */
  privateLaunches?: boolean;
}

/**
 * Where a link to a private repository's launch page goes: the sign-in flow, which comes back
 * to `path` once signed in (src/web/sign-in-routes.ts).
 */
export const signInLaunchUrl = (publicUrl: string, path: string) =>
  `${publicUrl}/sign-in?next=${encodeURIComponent(path)}`;

const STATES: Record<CommentState, string> = {
  building: '⏳ building',
  built: '✅ built: it launches at once',
  failed: '❌ the build failed',
};

/** The comment's text under the marker: the launch badge pinned to the head commit, and the state. */
export function renderComment(content: CommentContent): string {
  const { publicUrl, owner, repo, sha } = content;
  const viaSignIn = content.private && content.privateLaunches;
  const link = (path: string) =>
    viaSignIn ? signInLaunchUrl(publicUrl, path) : `${publicUrl}${path}`;
  const launch = link(`/v2/gh/${owner}/${repo}/${sha}`);
  const commit = `[\`${sha.slice(0, 7)}\`](${content.githubUrl}/${owner}/${repo}/commit/${sha})`;
  const state = content.logUrl
    ? `${STATES[content.state]} ([build log](${content.logUrl}))`
    : STATES[content.state];
  const lines = [
    `[![Launch on Bindery](${publicUrl}/badge_logo.svg)](${launch}) **Launch this pull request** at commit ${commit}`,
    '',
    `- Build: ${state}`,
    `- This commit: ${launch}`,
  ];
  if (content.branch) {
    const { name, repo: branchRepo } = content.branch;
    lines.push(
      `- Branch \`${name}\`, its newest commit: ${link(`/v2/gh/${branchRepo}/${encodeURIComponent(name)}`)}`,
    );
  }
  if (viaSignIn) {
    lines.push(
      '',
      'This repository is private: it launches for the people who can read it on GitHub, once they sign in with GitHub on Bindery (the links above ask them to).',
    );
  } else if (content.private) {
    lines.push(
      '',
      'This repository is private: Bindery builds it to check its environment, but launches only public repositories.',
    );
  }
  lines.push('', '<sub>Bindery updates this comment when the pull request gets new commits.</sub>');
  return lines.join('\n');
}

interface Marker {
  head: string;
  updated: string;
}

/** The head commit and event time a comment was written for, from its marker. */
export function parseMarker(body: string): Marker | undefined {
  const match = /<!-- bindery:launch-badge head=([0-9a-f]{40}) updated=(\S*) -->/.exec(body);
  return match ? { head: match[1]!, updated: match[2]! } : undefined;
}

const withMarker = (marker: Marker, text: string) =>
  `${COMMENT_MARKER} head=${marker.head} updated=${marker.updated} -->\n${text}`;

export interface UpsertComment {
  owner: string;
  repo: string;
  number: number;
  /** The app's bot account; only its comments are ever edited. */
  botLogin: string;
  head: string;
  text: string;
  /**
   * The pull request's `updated_at` from the event, for a comment that follows the head: an
   * event older than the one that wrote the comment changes nothing. Without it (a build's end
   * being reported), only a comment still showing `head` is updated, and none is created.
   */
  updatedAt?: string;
}

/**
 * Keeps one comment per pull request: finds it by its marker among the bot's comments (every
 * page), creates it when missing, updates it in place when its text changes, and otherwise
 * leaves it alone. Returns what it did.
 */
export async function upsertComment(
  octokit: InstallationOctokit,
  comment: UpsertComment,
): Promise<'created' | 'updated' | 'unchanged'> {
  const { owner, repo, number: issue_number } = comment;
  const comments = await octokit.paginate(octokit.rest.issues.listComments, {
    owner,
    repo,
    issue_number,
    per_page: 100,
  });
  const mine = comments.find(
    (c) => c.user?.login === comment.botLogin && c.body?.includes(COMMENT_MARKER),
  );
  const marker = mine?.body ? parseMarker(mine.body) : undefined;
  if (comment.updatedAt === undefined) {
    if (!mine || marker?.head !== comment.head) return 'unchanged';
  } else if (marker && marker.updated > comment.updatedAt) {
    return 'unchanged';
  }
  const body = withMarker(
    { head: comment.head, updated: comment.updatedAt ?? marker?.updated ?? '' },
    comment.text,
  );
  if (!mine) {
    await octokit.rest.issues.createComment({ owner, repo, issue_number, body });
    return 'created';
  }
  if (mine.body === body) return 'unchanged';
  await octokit.rest.issues.updateComment({ owner, repo, comment_id: mine.id, body });
  return 'updated';
}
