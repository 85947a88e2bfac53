import { randomUUID } from 'node:crypto';
import { BuildTimeoutError, RequestRefusedError, StepFailure } from './errors.js';
import { failureFromEvent, refusal } from './failure-from-event.js';
import { followBuild } from './follow-build.js';
import { badgeMarkdown, commitOf, imageOf, launchUrlFor } from './launch-links.js';
import { InputError, readInputs, type ActionInputs } from './read-inputs.js';
import type { BuildEvent } from './read-event-stream.js';
import { specPath } from './spec-path.js';
import { errorCommand, quotedGroup } from './workflow-commands.js';
import { writeJobSummary, writeOutputs } from './write-outputs.js';

export interface RunActionOptions {
  /** INPUT_*, GITHUB_OUTPUT, GITHUB_STEP_SUMMARY, GITHUB_REPOSITORY, GITHUB_SHA. @defaultValue process.env */
  env?: NodeJS.ProcessEnv;
  /** @defaultValue globalThis.fetch */
  fetch?: typeof fetch;
  /** Where log lines and workflow commands go. @defaultValue process.stdout */
  write?: (text: string) => void;
}

/**
 * The action: builds the repository on the Bindery server, prints the build log in a group,
 * writes the outputs and a job summary. Returns the exit code: 0 when the image is built,
 * 1 (after an `::error::` line) when anything stopped it.
 */
export async function runAction({
  env = process.env,
  fetch: fetchImpl = globalThis.fetch,
  write = (text) => void process.stdout.write(text),
}: RunActionOptions = {}): Promise<number> {
  let inputs: ActionInputs | undefined;
  try {
    inputs = readInputs(env);
    const final = await buildOnServer(inputs, fetchImpl, write);
    const image = imageOf(final) ?? '';
    const sha = commitOf(final) ?? inputs.ref;
    const launchUrl = launchUrlFor(inputs, sha);
    const badge = badgeMarkdown(inputs.server, launchUrl);
    const outputs = {
      image,
      'launch-url': launchUrl,
      status: final.phase,
      'badge-markdown': badge,
    };
    if (env.GITHUB_OUTPUT) await writeOutputs(env.GITHUB_OUTPUT, outputs);
    if (env.GITHUB_STEP_SUMMARY) {
      await writeJobSummary(
        env.GITHUB_STEP_SUMMARY,
        `### Bindery: ${inputs.provider}/${inputs.repository} at ${sha}\n\n${badge}\n\n` +
          `- Status: ${final.phase}\n- Image: \`${image}\`\n- Launch: ${launchUrl}\n`,
      );
    }
    write(`Built ${image}\nLaunch it at ${launchUrl}\n`);
    return 0;
  } catch (error) {
    const message =
      error instanceof StepFailure || error instanceof InputError
        ? error.message
        : `The action failed unexpectedly: ${error instanceof Error ? error.message : String(error)}`;
    write(errorCommand(message));
    if (env.GITHUB_STEP_SUMMARY && inputs) {
      await writeJobSummary(
        env.GITHUB_STEP_SUMMARY,
        `### Bindery: ${inputs.provider}/${inputs.repository} at ${inputs.ref}\n\n` +
          `The build did not succeed: ${message}\n`,
      ).catch(() => undefined);
    }
    return 1;
  }
}

/** Follows `/build/…` inside a log group; returns the final event or throws a StepFailure. */
async function buildOnServer(
  inputs: ActionInputs,
  fetchImpl: typeof fetch,
  write: (text: string) => void,
): Promise<BuildEvent> {
  const spec = specPath(inputs.provider, inputs.repository, inputs.ref);
  const url = `${inputs.server}/build/${inputs.provider}/${spec}${inputs.launch ? '' : '?build_only=true'}`;
  write(`Building ${inputs.provider}/${spec} on ${inputs.server}\n`);
  const signal = AbortSignal.timeout(inputs.timeoutSeconds * 1000);
  const timeout = new BuildTimeoutError(
    `The build did not finish within ${inputs.timeoutSeconds} s (the timeout input); it may still ` +
      `be running on the server.`,
  );
  const group = quotedGroup('Build log', randomUUID());
  write(group.open);
  let final: BuildEvent;
  try {
    final = await followBuild({
      url,
      headers: inputs.token ? { authorization: `Bearer ${inputs.token}` } : {},
      signal,
      fetch: fetchImpl,
      // Building only, the image exists once `built` arrives; a launch ends at `ready`.
      isFinal: (event) =>
        event.phase === 'ready' || (!inputs.launch && event.phase === 'built' && !!imageOf(event)),
      onEvent: (event) => {
        if (typeof event.message === 'string' && event.message)
          write(event.message.replace(/\n?$/, '\n'));
      },
      onReconnect: (reason) =>
        write(
          `The connection to the server dropped (${reason}); reconnecting to the same build.\n`,
        ),
    });
  } catch (error) {
    if (signal.aborted) throw timeout;
    if (error instanceof RequestRefusedError) throw refusal(error.status, error.message, inputs);
    throw error;
  } finally {
    write(group.close);
  }
  if (final.phase === 'failed') throw failureFromEvent(final, inputs);
  return final;
}
