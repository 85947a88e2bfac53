import { randomUUID } from 'node:crypto';
import { appendFile } from 'node:fs/promises';

/**
 * Appends `outputs` to the runner's GITHUB_OUTPUT file: `name=value` lines, or the heredoc form
 * (`name<<DELIMITER`) for a value with a line break, as actions/toolkit writes them.
 */
export async function writeOutputs(file: string, outputs: Record<string, string>): Promise<void> {
  let text = '';
  for (const [name, value] of Object.entries(outputs)) {
    if (!/[\r\n]/.test(value)) {
      text += `${name}=${value}\n`;
      continue;
    }
    const delimiter = `ghadelimiter_${randomUUID()}`;
    text += `${name}<<${delimiter}\n${value}\n${delimiter}\n`;
  }
  await appendFile(file, text);
}

/** Appends Markdown to the job summary (the GITHUB_STEP_SUMMARY file). */
export async function writeJobSummary(file: string, markdown: string): Promise<void> {
  await appendFile(file, markdown.endsWith('\n') ? markdown : `${markdown}\n`);
}
