// action/src/run-action.ts
import { randomUUID as randomUUID2 } from "node:crypto";

// action/src/errors.ts
var StepFailure = class extends Error {
  constructor(message) {
    super(message);
    this.name = this.constructor.name;
  }
};
var ServerUnreachableError = class extends StepFailure {
};
var RequestRefusedError = class extends StepFailure {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
  status;
};
var BuildFailedError = class extends StepFailure {
};
var BuildTimeoutError = class extends StepFailure {
};

// action/src/failure-from-event.ts
function failureFromEvent(event, inputs) {
  const message = String(event.message ?? "no reason given").trim();
  const status = typeof event.status_code === "number" ? event.status_code : void 0;
  if (status === void 0) {
    return new BuildFailedError(
      `The build of ${inputs.provider}/${inputs.repository} at ${inputs.ref} failed: ${message}`
    );
  }
  return refusal(status, message, inputs);
}
function refusal(status, message, inputs) {
  if (status === 401 || status === 403) {
    return new RequestRefusedError(
      inputs.token ? `The Bindery server refused the API token (${status}: ${message}). Check that the token input holds one of the server's BINDERY_API_TOKENS.` : `The Bindery server refused the request (${status}: ${message}). Set the token input to an API token of the server, or set launch: true.`,
      status
    );
  }
  return new RequestRefusedError(
    `The Bindery server refused the request (${status}): ${message}`,
    status
  );
}

// action/src/read-event-stream.ts
async function* readEventStream(body) {
  const decoder = new TextDecoder();
  let buffered = "";
  for await (const chunk of body) {
    buffered += decoder.decode(chunk, { stream: true }).replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffered.indexOf("\n\n")) >= 0) {
      const block = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      const data = block.split("\n").filter((line) => line.startsWith("data:")).map((line) => line.slice(5).replace(/^ /, "")).join("\n");
      if (!data) continue;
      const event = JSON.parse(data);
      if (typeof event.phase === "string") yield event;
    }
  }
}

// action/src/follow-build.ts
var RECONNECTS = 1;
function networkReason(error) {
  const cause = error.cause;
  if (typeof cause?.code === "string") return cause.code;
  if (typeof cause?.message === "string") return cause.message;
  return error instanceof Error ? error.message : String(error);
}
async function refusalFrom(response) {
  const text = await response.text().catch(() => "");
  let message = text.trim().slice(0, 500);
  try {
    const parsed = JSON.parse(text);
    if (typeof parsed.message === "string") message = parsed.message.trim();
  } catch {
  }
  throw new RequestRefusedError(message || response.statusText, response.status);
}
async function followBuild(options) {
  const fetchImpl = options.fetch ?? globalThis.fetch;
  const signal = options.signal;
  const aborted = () => {
    if (signal?.aborted)
      throw signal.reason instanceof Error ? signal.reason : new StepFailure("Aborted.");
  };
  let previous = [];
  for (let attempt = 0; ; attempt++) {
    let response;
    try {
      response = await fetchImpl(options.url, {
        headers: { accept: "text/event-stream", ...options.headers },
        signal
      });
    } catch (error) {
      aborted();
      throw new ServerUnreachableError(
        `Could not reach the Bindery server at ${new URL(options.url).origin} (${networkReason(error)}).`
      );
    }
    if (!response.ok) return refusalFrom(response);
    if (!response.body) throw new StepFailure("The Bindery server answered without a body.");
    const current = [];
    let replaying = previous.length > 0;
    let dropped = "the stream ended before the build did";
    try {
      for await (const event of readEventStream(response.body)) {
        const text = JSON.stringify(event);
        current.push(text);
        if (replaying && previous[current.length - 1] === text) continue;
        replaying = false;
        if (event.phase === "failed") return event;
        options.onEvent?.(event);
        if (options.isFinal(event)) return event;
      }
    } catch (error) {
      aborted();
      dropped = networkReason(error);
    }
    if (attempt >= RECONNECTS) {
      throw new ServerUnreachableError(
        `The connection to the Bindery server dropped twice before the build ended (${dropped}).`
      );
    }
    options.onReconnect?.(dropped);
    previous = current;
  }
}

// action/src/read-inputs.ts
var PROVIDERS = ["gh", "gl", "gist", "git"];
var InputError = class extends Error {
  constructor(message) {
    super(message);
    this.name = this.constructor.name;
  }
};
function input(env, name) {
  return (env[`INPUT_${name.replace(/ /g, "_").toUpperCase()}`] ?? "").trim();
}
function parseBoolean(name, text) {
  if (/^(true|yes|1)$/i.test(text)) return true;
  if (/^(false|no|0|)$/i.test(text)) return false;
  throw new InputError(`The input ${name} is "${text}"; use true or false.`);
}
function readInputs(env = process.env) {
  const server = input(env, "server").replace(/\/+$/, "");
  if (!server) throw new InputError("The input server is required: the Bindery base URL.");
  if (!/^https?:\/\/[^/]/i.test(server)) {
    throw new InputError(
      `The input server is "${server}"; give the Bindery base URL, e.g. https://binder.example.org.`
    );
  }
  const provider = input(env, "provider") || "gh";
  if (!PROVIDERS.includes(provider)) {
    throw new InputError(
      `The input provider is "${provider}"; use one of ${PROVIDERS.join(", ")}.`
    );
  }
  const repository = input(env, "repository") || (env.GITHUB_REPOSITORY ?? "").trim();
  if (!repository) {
    throw new InputError("The input repository is empty and GITHUB_REPOSITORY is not set.");
  }
  const ref = input(env, "ref") || (env.GITHUB_SHA ?? "").trim() || "HEAD";
  const timeoutText = input(env, "timeout") || "1800";
  const timeoutSeconds = Number(timeoutText);
  if (!Number.isFinite(timeoutSeconds) || timeoutSeconds <= 0) {
    throw new InputError(`The input timeout is "${timeoutText}"; give a number of seconds.`);
  }
  return {
    server,
    provider,
    repository,
    ref,
    token: input(env, "token") || void 0,
    launch: parseBoolean("launch", input(env, "launch")),
    timeoutSeconds
  };
}

// action/src/spec-path.ts
function specPath(provider, repository, ref) {
  const escapedRef = encodeURIComponent(ref);
  switch (provider) {
    case "gh":
    case "gist": {
      const name = repository.replace(/\.git$/, "");
      if (!/^[\w.-]+\/[\w.-]+$/.test(name)) {
        const shape = provider === "gh" ? "OWNER/REPO" : "USER/GIST_ID";
        throw new InputError(
          `The input repository is "${repository}"; for ${provider} use ${shape}.`
        );
      }
      return `${name}/${escapedRef}`;
    }
    case "gl":
      return `${encodeURIComponent(repository.replace(/^\/+|\/+$/g, ""))}/${escapedRef}`;
    case "git":
      return `${encodeURIComponent(repository)}/${escapedRef}`;
  }
}

// action/src/launch-links.ts
function imageOf(event) {
  const image = event.imageName ?? event.image;
  return typeof image === "string" ? image : void 0;
}
function commitOf(event) {
  const persistent = event.binder_persistent_request;
  if (typeof persistent === "string" && persistent.includes("/")) {
    return decodeURIComponent(persistent.slice(persistent.lastIndexOf("/") + 1));
  }
  const image = imageOf(event);
  const tag = image?.slice(image.lastIndexOf("/") + 1).split(":")[1];
  return tag || void 0;
}
var launchUrlFor = (inputs, sha) => `${inputs.server}/v2/${inputs.provider}/${specPath(inputs.provider, inputs.repository, sha)}`;
var badgeMarkdown = (server, launchUrl) => `[![Binder](${server}/badge_logo.svg)](${launchUrl})`;

// action/src/workflow-commands.ts
var escapeData = (text) => text.replace(/%/g, "%25").replace(/\r/g, "%0D").replace(/\n/g, "%0A");
var errorCommand = (message) => `::error::${escapeData(message.trim())}
`;
function quotedGroup(title, token) {
  return {
    open: `::group::${escapeData(title)}
::stop-commands::${token}
`,
    close: `::${token}::
::endgroup::
`
  };
}

// action/src/write-outputs.ts
import { randomUUID } from "node:crypto";
import { appendFile } from "node:fs/promises";
async function writeOutputs(file, outputs) {
  let text = "";
  for (const [name, value] of Object.entries(outputs)) {
    if (!/[\r\n]/.test(value)) {
      text += `${name}=${value}
`;
      continue;
    }
    const delimiter = `ghadelimiter_${randomUUID()}`;
    text += `${name}<<${delimiter}
${value}
${delimiter}
`;
  }
  await appendFile(file, text);
}
async function writeJobSummary(file, markdown) {
  await appendFile(file, markdown.endsWith("\n") ? markdown : `${markdown}
`);
}

// action/src/run-action.ts
async function runAction({
  env = process.env,
  fetch: fetchImpl = globalThis.fetch,
  write = (text) => void process.stdout.write(text)
} = {}) {
  let inputs;
  try {
    inputs = readInputs(env);
    const final = await buildOnServer(inputs, fetchImpl, write);
    const image = imageOf(final) ?? "";
    const sha = commitOf(final) ?? inputs.ref;
    const launchUrl = launchUrlFor(inputs, sha);
    const badge = badgeMarkdown(inputs.server, launchUrl);
    const outputs = {
      image,
      "launch-url": launchUrl,
      status: final.phase,
      "badge-markdown": badge
    };
    if (env.GITHUB_OUTPUT) await writeOutputs(env.GITHUB_OUTPUT, outputs);
    if (env.GITHUB_STEP_SUMMARY) {
      await writeJobSummary(
        env.GITHUB_STEP_SUMMARY,
        `### Bindery: ${inputs.provider}/${inputs.repository} at ${sha}

${badge}

- Status: ${final.phase}
- Image: \`${image}\`
- Launch: ${launchUrl}
`
      );
    }
    write(`Built ${image}
Launch it at ${launchUrl}
`);
    return 0;
  } catch (error) {
    const message = error instanceof StepFailure || error instanceof InputError ? error.message : `The action failed unexpectedly: ${error instanceof Error ? error.message : String(error)}`;
    write(errorCommand(message));
    if (env.GITHUB_STEP_SUMMARY && inputs) {
      await writeJobSummary(
        env.GITHUB_STEP_SUMMARY,
        `### Bindery: ${inputs.provider}/${inputs.repository} at ${inputs.ref}

The build did not succeed: ${message}
`
      ).catch(() => void 0);
    }
    return 1;
  }
}
async function buildOnServer(inputs, fetchImpl, write) {
  const spec = specPath(inputs.provider, inputs.repository, inputs.ref);
  const url = `${inputs.server}/build/${inputs.provider}/${spec}${inputs.launch ? "" : "?build_only=true"}`;
  write(`Building ${inputs.provider}/${spec} on ${inputs.server}
`);
  const signal = AbortSignal.timeout(inputs.timeoutSeconds * 1e3);
  const timeout = new BuildTimeoutError(
    `The build did not finish within ${inputs.timeoutSeconds} s (the timeout input); it may still be running on the server.`
  );
  const group = quotedGroup("Build log", randomUUID2());
  write(group.open);
  let final;
  try {
    final = await followBuild({
      url,
      headers: inputs.token ? { authorization: `Bearer ${inputs.token}` } : {},
      signal,
      fetch: fetchImpl,
      // Building only, the image exists once `built` arrives; a launch ends at `ready`.
      isFinal: (event) => event.phase === "ready" || !inputs.launch && event.phase === "built" && !!imageOf(event),
      onEvent: (event) => {
        if (typeof event.message === "string" && event.message)
          write(event.message.replace(/\n?$/, "\n"));
      },
      onReconnect: (reason) => write(
        `The connection to the server dropped (${reason}); reconnecting to the same build.
`
      )
    });
  } catch (error) {
    if (signal.aborted) throw timeout;
    if (error instanceof RequestRefusedError) throw refusal(error.status, error.message, inputs);
    throw error;
  } finally {
    write(group.close);
  }
  if (final.phase === "failed") throw failureFromEvent(final, inputs);
  return final;
}

// action/src/main.ts
process.exitCode = await runAction();
