/**
 * Escapes a workflow command's data as the runner reads it back (`%`, CR and LF), see
 * https://github.com/actions/toolkit/blob/main/packages/core/src/command.ts
 */
export const escapeData = (text: string) =>
  text.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');

/** `::error::<message>`, the line that marks the step's failure in the workflow's annotations. */
export const errorCommand = (message: string) => `::error::${escapeData(message.trim())}\n`;

/**
 * The lines that open and close a collapsible group in which workflow commands are switched
 * off: a repository's build log is not ours, and must not be able to set outputs or masks
 * (`::stop-commands::`, https://docs.github.com/en/actions/reference/workflow-commands-for-github-actions#stopping-and-starting-workflow-commands).
 */
export function quotedGroup(title: string, token: string) {
  return {
    open: `::group::${escapeData(title)}\n::stop-commands::${token}\n`,
    close: `::${token}::\n::endgroup::\n`,
  };
}
