import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stripVTControlCharacters } from 'node:util';
import type { Config } from '../config.js';
import type { ContainerEngine } from '../engine/container-engine.js';
import { ImageStore } from '../engine/image-store.js';
import { BuildError, UnavailableError } from '../errors.js';
import { formatBytes } from '../format-bytes.js';
import { formatDuration } from '../format-duration.js';
import { fetchCommit } from '../repos/fetch-commit.js';
import { lookupAll, type LookupAll } from '../repos/git-host-guard.js';
import type { GitHubClient } from '../repos/github-client.js';
import { providerFor } from '../repos/provider-registry.js';
import type { RepoSpec } from '../repos/repo-spec.js';
import { hashDirectory, packBuildContext, RENDERED_DOCKERFILE } from './build-context.js';
import type { BuildEvent, BuildEventListener } from '../build-event.js';
import { planBuild, type BaseImageFacts, type BuildPlan } from './detect.js';
import { indexArgsForCheck, openIndexAccess } from './index-access.js';
import { checkRepositoryDockerfile } from './dockerfile-guard.js';
import { failedImageNameFor, imageNameFor } from './image-name.js';
import { renderDockerfile } from './render-dockerfile.js';
import { readRepoConfig } from './repo-config.js';

/** A repository pinned to one commit (or, for a local directory, one content hash). */
export interface ResolvedRepo {
  spec: RepoSpec;
  ref: string;
  imageName: string;
}

export interface BuildResult extends ResolvedRepo {
  /** True when the image already existed and nothing was built. */
  cached: boolean;
  durationMs: number;
}

export interface BuildOptions {
  onEvent?: BuildEventListener;
  /** Tag the image with this name instead of the derived one (`bindery build --image`). */
  imageName?: string;
  signal?: AbortSignal;
  /**
   * The installation token for a private GitHub repository, used for the fetch only and never
   * logged; only the GitHub App's builds pass one.
   */
  gitToken?: string;
}

export interface BuilderDeps {
  engine: ContainerEngine;
  config: Config;
  /** DNS for the git host guard; the system resolver by default. */
  lookup?: LookupAll;
  /**
   * The token for GitHub's API for `owner/repo`: the app's installation token where it is
   * installed (the GitHub App issue), else GITHUB_TOKEN.
   */
  githubToken?: (owner: string, repo: string) => Promise<string | undefined>;
  /**
   * The client `gh` refs are resolved through: the GitHub App's Octokit when the app is on
   * (it authenticates itself; githubToken is then not sent). Without, a shared one with retry
   * and throttling for GHE_HOST's API (src/repos/github-client.ts).
   */
  github?: GitHubClient;
  /**
   * A network of the build's own for its steps, released once the build has ended however it
   * ended (the sandbox's `build.acquire`); it rejects when the sandbox's rules are missing, and
   * nothing of the repository runs. Unused when BINDERY_BUILD_NETWORK names one network for all
   * builds; without either, build steps run on Docker's default bridge (`bindery build`).
   */
  buildNetwork?: () => Promise<{ network: string; release(): Promise<void> }>;
}

const STEP_LINE = /^Step \d+\/\d+ : /;
/** Lines of Docker's own about layers and containers, not the build's output. */
const BUILDER_NOISE = /^ ---> |^Removing intermediate container |^\s*$/;

/**
 * Turns repositories into images: resolve the ref, reuse the image when it exists, else fetch,
 * detect, render and build under the configured time and log limits.
 */
export class Builder {
  private baseFacts?: Promise<BaseImageFacts>;

  constructor(private readonly deps: BuilderDeps) {}

  /** Pins `spec` to a commit SHA (its provider's resolveRef) and names its image. */
  async resolve(spec: RepoSpec): Promise<ResolvedRepo> {
    const { config, lookup, github, githubToken } = this.deps;
    const ref = await providerFor(spec.provider).resolveRef(spec, {
      config,
      lookup,
      github,
      githubToken,
      hashDirectory,
    });
    return { spec, ref, imageName: imageNameFor(config.imagePrefix, spec.buildSlug, ref) };
  }

  /** Builds `spec` unless its image exists; events describe each phase as it happens. */
  async build(spec: RepoSpec, options: BuildOptions = {}): Promise<BuildResult> {
    const resolved = await this.resolve(spec);
    if (options.imageName) resolved.imageName = options.imageName;
    return this.buildResolved(resolved, options);
  }

  /** Builds a repository already pinned to a commit (a queued build job) unless its image exists. */
  async buildResolved(resolved: ResolvedRepo, options: BuildOptions = {}): Promise<BuildResult> {
    const started = Date.now();
    const emit = (event: BuildEvent) => options.onEvent?.(event);
    const { imageName, spec } = resolved;
    // With BINDERY_REGISTRY, built means pushed: an image only on this host (its push failed)
    // is pushed now, not built again.
    const images = new ImageStore(this.deps.engine, this.deps.config);
    if (await images.isPublished(imageName)) {
      emit({ phase: 'built', message: 'Found built image, launching...\n', imageName });
      return { ...resolved, cached: true, durationMs: Date.now() - started };
    }
    if (images.shared(imageName) && (await this.deps.engine.imageExists(imageName))) {
      await images.push(imageName, emit);
      emit({ phase: 'built', message: `Pushed image ${imageName}\n`, imageName });
      return { ...resolved, cached: true, durationMs: Date.now() - started };
    }

    const workDir =
      spec.provider === 'local' ? undefined : await mkdtemp(join(tmpdir(), 'bindery-build-'));
    try {
      let repoDir = spec.url;
      if (workDir) {
        emit({ phase: 'fetching', message: `Fetching ${spec.url} at ${resolved.ref}...\n` });
        repoDir = join(workDir, 'repo');
        await fetchCommit(
          spec.url,
          resolved.ref,
          repoDir,
          {
            timeoutMs: this.deps.config.git.cloneTimeoutMs,
            maxBytes: this.deps.config.git.cloneMaxBytes,
          },
          {
            token: options.gitToken,
            // A worker may be another process, or hours later: the host is checked again here,
            // and git held to the addresses checked (DNS rebinding).
            guard: { allowedHosts: this.deps.config.git.allowedHosts, lookup: this.deps.lookup },
          },
        );
      } else {
        emit({ phase: 'fetching', message: `Reading ${spec.url}...\n` });
      }
      await this.buildFrom(repoDir, resolved, emit, options.signal);
    } finally {
      if (workDir) await rm(workDir, { recursive: true, force: true });
    }
    await images.push(imageName, emit);
    emit({ phase: 'built', message: `Built image ${imageName}\n`, imageName });
    return { ...resolved, cached: false, durationMs: Date.now() - started };
  }

  private async buildFrom(
    repoDir: string,
    resolved: ResolvedRepo,
    emit: (event: BuildEvent) => void,
    signal?: AbortSignal,
  ): Promise<void> {
    const { config, engine } = this.deps;
    const repoConfig = await readRepoConfig(repoDir);
    const plan = planBuild(repoConfig, await this.baseImageFacts());
    // bindery.buildpack tells a launch how to start the image (start-session.ts).
    const labels = {
      'bindery.kind': 'build',
      'bindery.repo': resolved.spec.repoLabel,
      'bindery.buildpack': plan.buildpack,
    };
    const rendered =
      plan.buildpack === 'dockerfile'
        ? undefined
        : renderDockerfile(plan, {
            baseImage: config.baseImage,
            labels,
            micromambaUrl: config.build.micromambaUrl,
            cranMirror: config.build.cranMirror,
            pythonMirror: config.build.pythonMirror,
          });
    emit({ phase: 'building', message: `Building ${resolved.imageName} (${plan.buildpack})\n` });
    for (const note of plan.notes) emit({ phase: 'building', message: note + '\n' });

    if (plan.dockerfile !== undefined) {
      await checkRepositoryDockerfile(repoConfig.files.Dockerfile ?? '', {
        path: plan.dockerfile,
        buildArgs: this.buildArgs(plan, rendered, indexArgsForCheck(config.build)),
        baseImage: config.baseImage,
        imagePrefix: config.imagePrefix,
        registry: config.registry,
        inspectImage: (name) => engine.inspectImage(name),
        lookup: this.deps.lookup ?? lookupAll,
      });
    }
    // The build's own network, checked against the sandbox's rules as it is made: the last
    // thing before the repository's steps run.
    const own = config.build.network ? undefined : await this.deps.buildNetwork?.();
    const network = config.build.network ?? own?.network;
    // Index credentials never enter the build: Docker records build arguments in the image's
    // history, and a build step can print them into the public log (index-access.ts). A
    // forwarder on this network's gateway serves such an index to this build only, and is
    // closed when the build ends.
    let indexes: Awaited<ReturnType<typeof openIndexAccess>>;
    try {
      indexes = await openIndexAccess(config.build, () =>
        engine.networkAddresses(network ?? 'bridge'),
      );
    } catch (error) {
      await own?.release().catch(() => {});
      throw error;
    }
    const buildArgs = this.buildArgs(plan, rendered, indexes.buildArgs);

    const limit = new AbortController();
    const timer = setTimeout(
      () =>
        limit.abort(
          new BuildError(
            `The build took longer than ${formatDuration(config.build.timeoutMs)}, this service's limit, and was stopped.`,
          ),
        ),
      config.build.timeoutMs,
    );
    let logBytes = 0;
    // The failing step's last lines go into the error: that is where the reason usually is.
    let stepTail: string[] = [];
    try {
      await engine.buildImage({
        context: await packBuildContext(repoDir, repoConfig, rendered),
        dockerfile: rendered === undefined ? plan.dockerfile! : RENDERED_DOCKERFILE,
        tag: resolved.imageName,
        // What the successful steps committed goes under the image budget, and serves as cache.
        failedTag: failedImageNameFor(resolved.imageName),
        // A rendered Dockerfile carries its labels in one step; Docker adds a step per label.
        labels: rendered ? {} : labels,
        buildArgs,
        extraHosts: indexes.extraHosts,
        limits: {
          cpus: config.session.cpus,
          memoryBytes: config.session.memoryBytes,
          pidsLimit: config.session.pidsLimit,
        },
        network,
        signal: signal ? AbortSignal.any([signal, limit.signal]) : limit.signal,
        onOutput: (line) => {
          logBytes += Buffer.byteLength(line) + 1;
          if (logBytes > config.build.logMaxBytes) {
            limit.abort(
              new BuildError(
                `The build printed more than ${formatBytes(config.build.logMaxBytes)} of log, this service's limit, and was stopped.`,
              ),
            );
            return;
          }
          if (STEP_LINE.test(line)) stepTail = [];
          else if (!BUILDER_NOISE.test(line))
            stepTail = [...stepTail.slice(-7), stripVTControlCharacters(line)];
          emit({ phase: 'building', message: `${line}\n` });
        },
      });
    } catch (error) {
      if (error instanceof BuildError && !limit.signal.aborted) {
        const where = error.step ? ` at ${error.step.replace(/^Step /, 'step ')}` : '';
        const tail = stepTail.length > 0 ? `\nIts last output:\n  ${stepTail.join('\n  ')}` : '';
        throw new BuildError(`The build failed${where}: ${error.message}${tail}`, error.step, {
          cause: error,
        });
      }
      throw error;
    } finally {
      clearTimeout(timer);
      try {
        await indexes.close();
      } finally {
        // A network Docker still holds stays for the next start's sweep; the outcome stands.
        await own?.release().catch(() => {});
      }
    }
  }

  /** The build arguments: the base image for a repository's own Dockerfile, the indexes, uv's mirror. */
  private buildArgs(
    plan: BuildPlan,
    rendered: string | undefined,
    indexArgs: Record<string, string>,
  ): Record<string, string> {
    const { config } = this.deps;
    return Object.fromEntries(
      Object.entries({
        // A repository's own Dockerfile may start FROM ${BINDERY_BASE_IMAGE}.
        BINDERY_BASE_IMAGE: rendered ? undefined : config.baseImage,
        ...indexArgs,
        UV_PYTHON_INSTALL_MIRROR: plan.kernelPython ? config.build.pythonMirror : undefined,
      }).filter((entry): entry is [string, string] => entry[1] !== undefined),
    );
  }

  /** Asks the base image which Python it has, once per builder. */
  private baseImageFacts(): Promise<BaseImageFacts> {
    this.baseFacts ??= (async () => {
      const { engine, config } = this.deps;
      if (!(await engine.imageExists(config.baseImage))) {
        throw new UnavailableError(
          `The base image ${config.baseImage} is missing; build it with deploy/base-image/bootstrap.sh.`,
        );
      }
      const { exitCode, output } = await engine.runToCompletion({
        image: config.baseImage,
        cmd: ['python3', '-c', 'import sys; print("%d.%d" % sys.version_info[:2])'],
        limits: { cpus: 1, memoryBytes: 256 * 2 ** 20 },
        networkDisabled: true,
        timeoutMs: 60_000,
      });
      const version = /(\d+\.\d+)\s*$/.exec(output.trim())?.[1];
      if (exitCode !== 0 || !version) {
        throw new UnavailableError(
          `The base image ${config.baseImage} has no working python3 (${output.trim().slice(-200)}).`,
        );
      }
      return { pythonVersion: version };
    })();
    this.baseFacts.catch(() => (this.baseFacts = undefined));
    return this.baseFacts;
  }
}
