/** A YAML value as the subset reader gives it: scalars stay strings; `null`, `~` and nothing are null. */
export type YamlValue = null | string | YamlValue[] | { [key: string]: YamlValue };

/** YAML this reader does not follow: aliases, complex keys, tab indentation, deep nesting. */
export class UnsupportedYamlError extends Error {
  constructor(what: string) {
    super(`unsupported YAML: ${what}`);
    this.name = this.constructor.name;
  }
}

interface Line {
  indent: number;
  text: string;
}

/** Where a quoted scalar may open: at the start of a value, never inside a word (`don't`). */
const opensScalar = (before: string | undefined) => before === undefined || /[\s[{,]/.test(before);

/** The line without its comment: `#` after a space, outside quotes, starts one. */
function withoutComment(raw: string): string {
  let quote: string | undefined;
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i];
    if (quote === '"' && c === '\\') i++;
    else if (quote && c === quote) {
      if (quote === "'" && raw[i + 1] === "'") i++;
      else quote = undefined;
    } else if (!quote && (c === '"' || c === "'") && opensScalar(raw[i - 1])) quote = c;
    else if (!quote && c === '#' && (i === 0 || /\s/.test(raw[i - 1]!))) return raw.slice(0, i);
  }
  // A quote still open continues on the next line, which the reader refuses where it matters.
  return raw;
}

function toLines(text: string): Line[] {
  const lines: Line[] = [];
  for (const raw of text.replace(/^\uFEFF/, '').split(/\r\n|\r|\n/)) {
    const body = withoutComment(raw).trimEnd();
    if (body.trim() === '' || body.startsWith('%') || /^(---|\.\.\.)$/.test(body)) continue;
    const indent = /^ */.exec(body)![0].length;
    if (body[indent] === '\t') throw new UnsupportedYamlError('a tab indents a line');
    lines.push({ indent, text: body.slice(indent) });
  }
  return lines;
}

/** The text without its leading anchors (`&name`) and tags (`!tag`), which change nothing here. */
const withoutProperties = (text: string) => text.replace(/^(?:[&!]\S*(?:\s+|$))+/, '');

const isSequenceItem = (text: string) => text === '-' || /^-[ \t]/.test(text);

function unquote(text: string): { value: string; rest: string } | undefined {
  const quote = text[0];
  if (quote === "'") {
    const match = /^'((?:[^']|'')*)'/.exec(text);
    if (!match) return undefined;
    return { value: match[1]!.replace(/''/g, "'"), rest: text.slice(match[0].length) };
  }
  if (quote !== '"') return undefined;
  const match = /^"((?:[^"\\]|\\.)*)"/.exec(text);
  if (!match) return undefined;
  const escapes: Record<string, string> = { n: '\n', t: '\t', r: '\r', '0': '\0' };
  const value = match[1]!.replace(/\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|.)/g, (_, e: string) =>
    e.length > 1 ? String.fromCodePoint(parseInt(e.slice(1), 16)) : (escapes[e] ?? e),
  );
  return { value, rest: text.slice(match[0].length) };
}

/** Where a plain key may start: not at an indicator, unless `-`, `?` or `:` leads a word. */
const PLAIN_KEY_START = /^(?:[^\s#'"[\]{}&*!|>%@`?,:-]|[-?:]\S)/;

/** `key: rest` when the line is a mapping entry with a plain or quoted key. */
function mappingEntry(text: string): { key: string; rest: string } | undefined {
  const quoted = unquote(text);
  if (quoted) {
    const after = /^\s*:(?:\s+|$)/.exec(quoted.rest);
    return after ? { key: quoted.value, rest: quoted.rest.slice(after[0].length) } : undefined;
  }
  if (!PLAIN_KEY_START.test(text)) return undefined;
  // The first colon followed by a blank ends a plain key; found in one pass, as a lazy
  // `(.*?)\s*:` would take time quadratic in a long line's blanks.
  const colon = /:(?=[ \t]|$)/.exec(text);
  if (!colon) return undefined;
  return { key: text.slice(0, colon.index).trimEnd(), rest: text.slice(colon.index + 1).trim() };
}

const scalar = (text: string): YamlValue =>
  text === '' || text === '~' || text === 'null' ? null : text;

/** Deepest nesting read; configuration never comes close, and recursion must stop somewhere. */
const MAX_DEPTH = 64;

/** Reads a flow collection (`[a, {pip: [b]}]`) or scalar written on one logical line. */
function readFlow(text: string): YamlValue {
  let i = 0;
  let depth = 0;
  const space = () => {
    while (i < text.length && /\s/.test(text[i]!)) i++;
  };
  const value = (): YamlValue => {
    space();
    const c = text[i];
    if (c === '[' || c === '{') {
      if (++depth > MAX_DEPTH) throw new UnsupportedYamlError('collections nested too deep');
      i++;
      const close = c === '[' ? ']' : '}';
      const items: YamlValue[] = [];
      const map: Record<string, YamlValue> = Object.create(null);
      for (space(); text[i] !== close; space()) {
        const key = value();
        space();
        let entry: YamlValue = key;
        if (text[i] === ':') {
          i++;
          const item = value();
          if (c === '{') map[String(key)] = item;
          else entry = Object.assign(Object.create(null), { [String(key)]: item });
        } else if (c === '{') map[String(key)] = null;
        if (c === '[') items.push(entry);
        space();
        if (text[i] === ',') i++;
        else if (text[i] !== close) throw new UnsupportedYamlError(`flow collection "${text}"`);
      }
      i++;
      depth--;
      return c === '[' ? items : map;
    }
    if (c === '*') throw new UnsupportedYamlError('an alias');
    const quoted = unquote(text.slice(i));
    if (quoted) {
      i = text.length - quoted.rest.length;
      return quoted.value;
    }
    const plain = /^(?:[^,[\]{}:]|:(?![\s,[\]{}]|$))*/.exec(text.slice(i))![0];
    i += plain.length;
    return scalar(plain.trim());
  };
  const result = value();
  space();
  if (i < text.length) throw new UnsupportedYamlError(`text after a value: "${text}"`);
  return result;
}

class BlockReader {
  private pos = 0;
  private depth = 0;

  constructor(private readonly lines: Line[]) {}

  document(): YamlValue {
    const value = this.node(0);
    if (this.pos < this.lines.length) {
      throw new UnsupportedYamlError(`line "${this.lines[this.pos]!.text}"`);
    }
    return value;
  }

  /** The node on the current line, when it is indented at least `min`. */
  private node(min: number): YamlValue {
    const line = this.lines[this.pos];
    if (!line || line.indent < min) return null;
    if (++this.depth > MAX_DEPTH) throw new UnsupportedYamlError('collections nested too deep');
    try {
      if (isSequenceItem(line.text)) return this.sequence(line.indent);
      if (mappingEntry(line.text)) return this.mapping(line.indent);
      this.pos++;
      return this.inline(line.text, line.indent - 1);
    } finally {
      this.depth--;
    }
  }

  private sequence(indent: number): YamlValue[] {
    const items: YamlValue[] = [];
    for (
      let line = this.lines[this.pos];
      line && line.indent === indent && isSequenceItem(line.text);
      line = this.lines[this.pos]
    ) {
      const after = line.text.slice(1);
      const column = indent + 1 + after.length - after.trimStart().length;
      const rest = withoutProperties(after.trimStart());
      if (rest === '') {
        this.pos++;
        items.push(this.node(indent + 1));
      } else if (isSequenceItem(rest) || mappingEntry(rest)) {
        // `- key: value` or `- - item`: a collection whose column is where its text starts.
        this.lines[this.pos] = { indent: column, text: rest };
        items.push(this.node(indent + 1));
      } else {
        this.pos++;
        items.push(this.inline(rest, indent));
      }
    }
    return items;
  }

  private mapping(indent: number): Record<string, YamlValue> {
    const map: Record<string, YamlValue> = Object.create(null);
    for (
      let line = this.lines[this.pos];
      line && line.indent === indent;
      line = this.lines[this.pos]
    ) {
      const entry = mappingEntry(line.text);
      if (!entry) throw new UnsupportedYamlError(`line "${line.text}" in a mapping`);
      this.pos++;
      const next = this.lines[this.pos];
      const rest = withoutProperties(entry.rest);
      if (rest !== '') map[entry.key] = this.inline(rest, indent);
      // A sequence may sit at its key's own indentation.
      else if (next?.indent === indent && isSequenceItem(next.text))
        map[entry.key] = this.sequence(indent);
      else map[entry.key] = this.node(indent + 1);
    }
    return map;
  }

  /** A value written after `key:` or `- `; it may go on over lines indented past `parent`. */
  private inline(text: string, parent: number): YamlValue {
    let value = text;
    const more: string[] = [];
    while ((this.lines[this.pos]?.indent ?? -1) > parent) more.push(this.lines[this.pos++]!.text);
    if (/^[|>][-+0-9]*$/.test(value)) return more.join(value.startsWith('|') ? '\n' : ' ');
    value = [value, ...more].join(' ');
    if (value.startsWith('[') || value.startsWith('{') || value.startsWith('*')) {
      return readFlow(value);
    }
    const quoted = unquote(value);
    if (quoted) {
      if (quoted.rest.trim() !== '') throw new UnsupportedYamlError(`text after "${value}"`);
      return quoted.value;
    }
    if (/^["']/.test(value)) throw new UnsupportedYamlError(`unterminated quote in ${value}`);
    return scalar(value);
  }
}

/**
 * Reads the block and flow YAML that configuration files such as environment.yml are written
 * in: mappings, sequences (compact and indentless too), flow collections, plain and quoted
 * scalars (lines folded with spaces), block scalars, comments. Anything beyond (aliases,
 * complex keys, tab indentation) throws UnsupportedYamlError, so a caller can choose a safe
 * answer instead of a wrong one.
 */
export function readYaml(text: string): YamlValue {
  return new BlockReader(toLines(text)).document();
}
