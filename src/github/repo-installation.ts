import type { GitHubApp } from './github-app.js';

/**
 * The id of the GitHub App's installation on `owner/repo`, asked as the app itself; undefined
 * when the app is not installed there (GitHub answers 404).
 */
export async function repoInstallation(
  app: Pick<GitHubApp, 'probot'>,
  owner: string,
  repo: string,
): Promise<number | undefined> {
  const octokit = await app.probot.auth();
  try {
    const { data } = await octokit.request('GET /repos/{owner}/{repo}/installation', {
      owner,
      repo,
    });
    return data.id;
  } catch (error) {
    if ((error as { status?: number }).status === 404) return undefined;
    throw error;
  }
}
