import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readYaml } from '../../src/build/read-yaml.js';

const ACTION_YML = join(import.meta.dirname, '../../action/action.yml');

interface InputMetadata {
  required?: string;
  default?: string;
}

/** What action/action.yml declares: its inputs (with defaults) and its outputs. */
export interface ActionMetadata {
  inputs: Record<string, InputMetadata>;
  outputs: Record<string, unknown>;
}

export function readActionMetadata(): ActionMetadata {
  const parsed = readYaml(readFileSync(ACTION_YML, 'utf8')) as unknown as ActionMetadata;
  if (!parsed.inputs || !parsed.outputs) throw new Error(`${ACTION_YML} has no inputs or outputs`);
  return parsed;
}

/** The part of the `github` context a workflow run gives the action's defaults. */
export interface WorkflowContext {
  repository: string;
  sha: string;
}

/** A default as the runner evaluates it: `${{ github.<name> }}` from the context, else as is. */
function evaluate(text: string, github: WorkflowContext): string {
  return text.replace(/\$\{\{\s*([^}]*?)\s*\}\}/g, (_, expression: string) => {
    const match = /^github\.(repository|sha)$/.exec(expression);
    if (!match) throw new Error(`action.yml uses the expression "${expression}", unknown here`);
    return github[match[1] as keyof WorkflowContext];
  });
}

/**
 * The environment the GitHub runner gives a JavaScript action for a step's `with:` values:
 * every input action.yml declares, given or defaulted (its `${{ github.* }}` expressions
 * evaluated), as `INPUT_<NAME>` (upper case, spaces as underscores), plus GITHUB_REPOSITORY and
 * GITHUB_SHA. An input action.yml does not declare is an error here, so a test cannot pass
 * one the workflow could not.
 * See https://docs.github.com/en/actions/sharing-automations/creating-actions/metadata-syntax-for-github-actions#inputs
 */
export function runnerEnv(
  given: Record<string, string>,
  github: WorkflowContext,
): Record<string, string> {
  const { inputs } = readActionMetadata();
  const unknown = Object.keys(given).filter((name) => !(name in inputs));
  if (unknown.length > 0) {
    throw new Error(`action.yml declares no input ${unknown.join(', ')}`);
  }
  const env: Record<string, string> = {
    GITHUB_REPOSITORY: github.repository,
    GITHUB_SHA: github.sha,
  };
  for (const [name, metadata] of Object.entries(inputs)) {
    const value =
      given[name] ??
      (metadata.default === undefined ? undefined : evaluate(metadata.default, github));
    if (value === undefined) continue;
    env[`INPUT_${name.replace(/ /g, '_').toUpperCase()}`] = value;
  }
  return env;
}
