/** One instruction of a Dockerfile, its continuation lines joined. */
export interface Instruction {
  /** Upper case: `FROM`, `ADD`, … */
  keyword: string;
  /** Everything after the keyword, as written. */
  args: string;
  /** 1-based line where it starts, for messages. */
  line: number;
}

/**
 * Reads a Dockerfile as Docker's classic builder does: parser directives (`# escape=`) at the
 * top, comments, and continuation lines (a line ending in the escape character).
 * https://docs.docker.com/reference/dockerfile/#parser-directives
 */
export function parseDockerfile(text: string): Instruction[] {
  const lines = text.split(/\r?\n/);
  let escape = '\\';
  let index = 0;
  for (; index < lines.length; index++) {
    const directive = /^#\s*([a-zA-Z]+)\s*=\s*(\S+)\s*$/.exec(lines[index]!);
    if (!directive) break;
    if (directive[1]!.toLowerCase() === 'escape') escape = directive[2]!;
  }
  const instructions: Instruction[] = [];
  let current: { text: string; line: number } | undefined;
  const finish = () => {
    if (!current) return;
    const match = /^(\S+)\s*([\s\S]*)$/.exec(current.text)!;
    instructions.push({ keyword: match[1]!.toUpperCase(), args: match[2]!, line: current.line });
    current = undefined;
  };
  for (; index < lines.length; index++) {
    const raw = lines[index]!;
    const trimmed = raw.trim();
    // Comments and blank lines end nothing: they are skipped even inside a continuation.
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const continues = trimmed.endsWith(escape);
    const body = continues ? trimmed.slice(0, -escape.length) : trimmed;
    // Joined as the builder joins them: the escape and the line break go, nothing is added.
    current = current ? { ...current, text: current.text + body } : { text: body, line: index + 1 };
    if (!continues) finish();
  }
  finish();
  return instructions;
}

/**
 * `$NAME`, `${NAME}`, `${NAME:-word}` and `${NAME:+word}` replaced from `vars`, as the builder
 * substitutes them in FROM, ADD and COPY; an unknown name is empty.
 */
export function expandVariables(text: string, vars: ReadonlyMap<string, string>): string {
  return text.replace(
    /\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?::([-+])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))/g,
    (_match, braced?: string, modifier?: string, word?: string, bare?: string) => {
      const value = vars.get((braced ?? bare)!) ?? '';
      if (modifier === '-') return value || (word ?? '');
      if (modifier === '+') return value ? (word ?? '') : '';
      return value;
    },
  );
}

/**
 * The words of an instruction's arguments: the JSON array form, or words split on white space
 * with flags (`--chown=…`) first.
 */
export function instructionWords(args: string): { flags: string[]; words: string[] } {
  let words: string[];
  try {
    const parsed: unknown = JSON.parse(args);
    words = Array.isArray(parsed) ? parsed.map(String) : args.split(/\s+/);
  } catch {
    words = args.split(/\s+/).filter(Boolean);
  }
  const flags: string[] = [];
  while (words[0]?.startsWith('--')) flags.push(words.shift()!);
  return { flags, words };
}
