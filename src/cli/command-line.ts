/**
 * What `bindery` was asked to do, read from its arguments alone: the commands, their options
 * and their help. Nothing here reads the environment or loads a heavy module, so `--help`,
 * `--version` and a mistyped flag answer at once (src/cli.ts imports a command's code only
 * when that command runs).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { BinderyError } from '../errors.js';
import { ROLES, type Role } from '../../workers/roles.js';

type OptionSpecs = NonNullable<ParseArgsConfig['options']>;

interface CommandSpec {
  /** The synopsis line after `bindery `. */
  synopsis: string;
  /** What the command does, one line for the overview. */
  summary: string;
  /** The command's own help: what it does in more words, and each option. */
  details: string;
  options: OptionSpecs;
  /** Whether the command takes one <path|url>. */
  takesSource: boolean;
}

const HELP: OptionSpecs = { help: { type: 'boolean', short: 'h' } };
const REF = { ref: { type: 'string' } } as const;
const ROLE = { role: { type: 'string', multiple: true } } as const;
const ROLES_HELP = `  --role ROLE   run only this role; repeat for more. Roles: web (pages, API, webhooks
                and the sessions' proxy), build (the build worker), github (prebuilds and
                check runs; needs the GitHub App), culler (stops idle sessions)`;
const IMAGE = { image: { type: 'string' } } as const;

export const COMMANDS = {
  serve: {
    synopsis: 'serve [--role ROLE]...',
    summary: 'web + workers + culler (one machine)',
    details: `Runs the service: the web front, the build worker, the GitHub worker (when the
GitHub App is set up) and the culler of idle sessions.
Its settings come from the environment (README.md, "Configuration").
Stops on Ctrl-C or SIGTERM after closing what it opened.
${ROLES_HELP}`,
    options: ROLE,
    takesSource: false,
  },
  worker: {
    synopsis: 'worker [--role ROLE]...',
    summary: 'only the workers: builds (and GitHub jobs)',
    details: `Runs the build worker, and the GitHub worker when the GitHub App is set up: they do
what the web processes enqueue in Redis, on this machine's Docker.
Stops on Ctrl-C or SIGTERM after closing what it opened.
${ROLES_HELP}`,
    options: ROLE,
    takesSource: false,
  },
  sandbox: {
    synopsis: 'sandbox [--remove]',
    summary: 'install and check the sandbox networks and firewall rules',
    details: `Installs the session network, the build networks and their firewall rules where
they are missing, and checks them; exits 1 and says what is wrong when a check fails.
  --remove   remove the networks and Bindery's firewall rules instead`,
    options: { remove: { type: 'boolean' } },
    takesSource: false,
  },
  build: {
    synopsis: 'build <path|url> [--ref REF] [--image NAME]',
    summary: 'build an image; prints its name last',
    details: `Builds the repository at <path|url> (a directory, or a git URL: https://, http://,
git://) unless its image exists; the log and the time taken go to stderr, the image's name to
stdout, last.
  --ref REF      the branch, tag or commit of a git URL (default: HEAD, the default branch)
  --image NAME   tag the image NAME instead of the name Bindery derives`,
    options: { ...REF, ...IMAGE },
    takesSource: true,
  },
  launch: {
    synopsis: 'launch <path|url> [--ref REF] [--publish ADDR]',
    summary: 'build, start Jupyter, print its URL',
    details: `Builds the repository as \`bindery build\` does, starts Jupyter in a session container
and prints its URL; Ctrl-C stops the session and removes it.
  --ref REF        the branch, tag or commit of a git URL (default: HEAD, the default branch)
  --image NAME     tag the image NAME instead of the name Bindery derives
  --publish ADDR   the host address Jupyter's port is published on (default: 127.0.0.1)`,
    options: { ...REF, ...IMAGE, publish: { type: 'string', default: '127.0.0.1' } },
    takesSource: true,
  },
} as const satisfies Record<string, CommandSpec>;

export type CommandName = keyof typeof COMMANDS;

/** The options of all commands; each command accepts only its own. */
export interface CommandOptions {
  ref?: string;
  image?: string;
  publish: string;
  remove: boolean;
  /** The roles named with --role; empty means the command's own. */
  roles: Role[];
}

export type CommandLine =
  | { action: 'help'; text: string }
  | { action: 'version' }
  | { action: 'run'; command: CommandName; source: string; options: CommandOptions };

/** The arguments do not say a thing `bindery` can do; exit status 2, with the usage. */
export class UsageError extends BinderyError {
  constructor(
    message: string,
    readonly usage: string,
  ) {
    super(message);
  }
}

const isCommand = (name: string | undefined): name is CommandName =>
  name !== undefined && Object.hasOwn(COMMANDS, name);

/** The overview every usage error ends with. */
export function overview(): string {
  const rows: [string, string][] = [
    ...Object.values(COMMANDS).map((spec): [string, string] => [spec.synopsis, spec.summary]),
    ['<command> --help', 'what a command does, and its options'],
    ['--version', "this Bindery's version"],
  ];
  const width = Math.max(...rows.map(([synopsis]) => synopsis.length));
  const lines = rows.map(
    ([synopsis, summary]) => `  bindery ${synopsis.padEnd(width)}  ${summary}`,
  );
  return ['usage:', ...lines].join('\n');
}

/** One command's help: its synopsis, then what it does. */
export function commandHelp(command: CommandName): string {
  const spec = COMMANDS[command];
  return `usage: bindery ${spec.synopsis}\n\n${spec.details}`;
}

/** Reads `argv` (without node and the script); throws UsageError when it makes no sense. */
export function parseCommandLine(argv: string[]): CommandLine {
  const [first, ...rest] = argv;
  if (first === undefined) throw new UsageError('No command given.', overview());
  if (first === '--help' || first === '-h') return { action: 'help', text: overview() };
  if (first === '--version' || first === '-V') return { action: 'version' };
  if (first === 'help') {
    const [topic] = rest;
    if (topic === undefined) return { action: 'help', text: overview() };
    if (!isCommand(topic)) throw new UsageError(`There is no command "${topic}".`, overview());
    return { action: 'help', text: commandHelp(topic) };
  }
  if (first.startsWith('-')) {
    throw new UsageError(`${first} is not an option here; a command comes first.`, overview());
  }
  if (!isCommand(first)) throw new UsageError(`There is no command "${first}".`, overview());

  const spec: CommandSpec = COMMANDS[first];
  const usage = `usage: bindery ${spec.synopsis}\n(bindery ${first} --help says more)`;
  // Help wins over everything else on the line: `bindery serve --port 1 --help` explains.
  const dashes = rest.indexOf('--');
  const beforeDashes = dashes === -1 ? rest : rest.slice(0, dashes);
  if (beforeDashes.includes('--help') || beforeDashes.includes('-h')) {
    return { action: 'help', text: commandHelp(first) };
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: rest,
      options: { ...spec.options, ...HELP },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    throw new UsageError(describeParseError(error, first), usage);
  }
  const { positionals, values } = parsed;
  const [source, ...extra] = positionals;
  if (spec.takesSource && source === undefined) {
    throw new UsageError(`${first} needs the <path|url> of a repository.`, usage);
  }
  const unexpected = spec.takesSource ? extra : positionals;
  if (unexpected.length > 0) {
    throw new UsageError(
      `${first} takes ${spec.takesSource ? 'one <path|url>' : 'no arguments'}, not also "${unexpected.join(' ')}".`,
      usage,
    );
  }
  const text = (name: string) => (typeof values[name] === 'string' ? values[name] : undefined);
  const roles = (values.role ?? []) as string[];
  const unknownRole = roles.find((role) => !(ROLES as readonly string[]).includes(role));
  if (unknownRole !== undefined) {
    throw new UsageError(
      `There is no role "${unknownRole}"; roles are ${ROLES.join(', ')}.`,
      usage,
    );
  }
  return {
    action: 'run',
    command: first,
    source: source ?? '',
    options: {
      ref: text('ref'),
      image: text('image'),
      publish: text('publish') ?? '127.0.0.1',
      remove: values.remove === true,
      roles: roles as Role[],
    },
  };
}

/** node:util's parse errors, as one sentence of ours. */
function describeParseError(error: unknown, command: CommandName): string {
  const { code, message } = error as { code?: string; message?: string };
  const option = /'(-[^' ]+)/.exec(message ?? '')?.[1] ?? 'an option';
  switch (code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `${command} has no option ${option}.`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      return /argument missing/.test(message ?? '')
        ? `The option ${option} needs a value.`
        : `The option ${option} takes no value.`;
    default:
      return message ?? String(error);
  }
}
