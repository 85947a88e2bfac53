/** What Bindery needs from a TOML file (pyproject.toml, Pipfile): its tables and its strings. */
export interface TomlKeys {
  /** Every table the document defines, by header, dotted key or inline table: `project`, `tool.black`. */
  tables: Set<string>;
  /** Every string value, by dotted path: `project.requires-python` → `>=3.9`. */
  strings: Map<string, string>;
}

/** A line this reader cannot follow; it skips the line, as the file's own tools will complain. */
class SkipLine extends Error {}

const BARE_KEY = /[A-Za-z0-9_-]+/y;
const SCALAR = /[^\s,\]}#]*/y;
const ESCAPES: Record<string, string> = { b: '\b', t: '\t', n: '\n', f: '\f', r: '\r', e: '\x1b' };

/**
 * Reads the structure of a TOML document: which tables exist and what its string values say,
 * following quoting, multi-line strings, arrays and inline tables so that text inside them is
 * never taken for a table. Numbers, dates and booleans are skipped. A malformed line is skipped
 * rather than refused: pip and pipenv report TOML errors better than Bindery would.
 */
export function readTomlKeys(text: string): TomlKeys {
  const tables = new Set<string>();
  const strings = new Map<string, string>();
  let i = 0;
  let depth = 0;
  let table: string[] = [];

  const skip = (): never => {
    throw new SkipLine();
  };
  const define = (path: string[]) => {
    for (let n = 1; n <= path.length; n++) tables.add(path.slice(0, n).join('.'));
  };
  const blank = () => {
    while (text[i] === ' ' || text[i] === '\t') i++;
  };
  const space = () => {
    while (i < text.length && /\s/.test(text[i]!)) i++;
    if (text[i] === '#') {
      while (i < text.length && text[i] !== '\n') i++;
      space();
    }
  };
  const sticky = (pattern: RegExp) => {
    pattern.lastIndex = i;
    const match = pattern.exec(text)?.[0] ?? '';
    i += match.length;
    return match;
  };

  const string = (): string => {
    const quote = text[i]!;
    const multi = text.startsWith(quote.repeat(3), i);
    i += multi ? 3 : 1;
    // A newline right after the opening delimiter is not part of a multi-line string.
    if (multi && text[i] === '\n') i++;
    else if (multi && text.startsWith('\r\n', i)) i += 2;
    let value = '';
    while (i < text.length) {
      if (text.startsWith(multi ? quote.repeat(3) : quote, i)) {
        // `""""` ends with one quote inside the string: the delimiter is the last three.
        while (multi && text[i + 3] === quote) value += text[i++];
        i += multi ? 3 : 1;
        return value;
      }
      const c = text[i]!;
      if (!multi && c === '\n') break;
      if (quote === '"' && c === '\\') {
        const escape = /^\\(?:u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8})|x([0-9a-fA-F]{2})|([\s\S]))/.exec(
          text.slice(i, i + 10),
        )!;
        i += escape[0].length;
        const hex = escape[1] ?? escape[2] ?? escape[3];
        if (hex) value += String.fromCodePoint(parseInt(hex, 16));
        // A backslash at a line's end joins the next line, without the leading blanks.
        else if (/\s/.test(escape[4]!)) while (/\s/.test(text[i] ?? '')) i++;
        else value += ESCAPES[escape[4]!] ?? escape[4];
        continue;
      }
      value += c;
      i++;
    }
    throw new SkipLine();
  };

  const key = (): string[] => {
    const parts: string[] = [];
    for (;;) {
      blank();
      if (text[i] === '"' || text[i] === "'") parts.push(string());
      else parts.push(sticky(BARE_KEY) || skip());
      blank();
      if (text[i] !== '.') return parts;
      i++;
    }
  };

  /** Reads the value of `path`; inside an array (no path) it is stepped over, not recorded. */
  const value = (path?: string[]): void => {
    // Recursion must stop somewhere; no real file nests arrays and tables this deep.
    if (depth > 64) throw new SkipLine();
    depth++;
    try {
      readValue(path);
    } finally {
      depth--;
    }
  };
  const readValue = (path?: string[]): void => {
    blank();
    const c = text[i];
    if (c === '"' || c === "'") {
      const read = string();
      if (path) strings.set(path.join('.'), read);
    } else if (c === '[') {
      i++;
      for (space(); text[i] !== ']'; space()) {
        if (i >= text.length) throw new SkipLine();
        if (text[i] === ',') i++;
        else value();
      }
      i++;
    } else if (c === '{') {
      if (path) define(path);
      i++;
      for (space(); text[i] !== '}'; space()) {
        if (i >= text.length) throw new SkipLine();
        if (text[i] === ',') {
          i++;
          continue;
        }
        const inner = [...(path ?? []), ...key()];
        if (text[i] !== '=') throw new SkipLine();
        i++;
        if (path) define(inner.slice(0, -1));
        value(path && inner);
      }
      i++;
    } else if (sticky(SCALAR) === '') {
      throw new SkipLine();
    }
  };

  while (i < text.length) {
    try {
      space();
      if (i >= text.length) break;
      if (text[i] === '[') {
        const array = text[i + 1] === '[';
        i += array ? 2 : 1;
        const path = key();
        if (!text.startsWith(array ? ']]' : ']', i)) throw new SkipLine();
        i += array ? 2 : 1;
        table = path;
        define(path);
      } else {
        const path = [...table, ...key()];
        if (text[i] !== '=') throw new SkipLine();
        i++;
        define(path.slice(0, -1));
        value(path);
      }
      blank();
      if (text[i] === '#') while (i < text.length && text[i] !== '\n') i++;
      if (i < text.length && text[i] !== '\n' && text[i] !== '\r') throw new SkipLine();
    } catch (error) {
      if (!(error instanceof SkipLine)) throw error;
      while (i < text.length && text[i] !== '\n') i++;
    }
  }
  return { tables, strings };
}
