/**
 * Renders README.md's configuration reference from src/config.ts: every variable of the zod
 * schema with its TSDoc (the description), its `@defaultValue` and its `// ## group` heading.
 * `npm run docs:config` writes it between the README's `<!-- config:start -->` and
 * `<!-- config:end -->` markers; test/unit/config-reference.test.ts fails when they differ.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { format, resolveConfig } from 'prettier';
import ts from 'typescript';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const CONFIG_PATH = join(ROOT, 'src', 'config.ts');
export const README_PATH = join(ROOT, 'README.md');
export const START_MARKER = '<!-- config:start -->';
export const END_MARKER = '<!-- config:end -->';

export interface ConfigVariable {
  group: string;
  name: string;
  description: string;
  /** The `@defaultValue` text, as written. */
  defaultValue: string;
}

/** The schema's object literal: the argument of `z.object(…)` assigned to `const schema`. */
function schemaLiteral(file: ts.SourceFile): ts.ObjectLiteralExpression {
  let found: ts.ObjectLiteralExpression | undefined;
  const visit = (node: ts.Node) => {
    if (
      ts.isVariableDeclaration(node) &&
      node.name.getText(file) === 'schema' &&
      node.initializer &&
      ts.isCallExpression(node.initializer) &&
      node.initializer.expression.getText(file) === 'z.object'
    ) {
      const [argument] = node.initializer.arguments;
      if (argument && ts.isObjectLiteralExpression(argument)) found = argument;
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  if (!found) throw new Error('src/config.ts: found no `const schema = z.object({ … })`');
  return found;
}

/** The text of a `/** … *\/` comment, its lines joined by spaces. */
function docText(comment: string): string {
  return comment
    .replace(/^\/\*\*/, '')
    .replace(/\*\/$/, '')
    .split('\n')
    .map((line) => line.replace(/^\s*\*?\s?/, '').trim())
    .filter(Boolean)
    .join(' ');
}

/**
 * The variables src/config.ts reads, in the schema's order. Throws naming each variable that has
 * no description, no `@defaultValue` or no `// ## group` above it, so none reaches the README
 * undocumented.
 */
export function readConfigVariables(source: string): ConfigVariable[] {
  const file = ts.createSourceFile('config.ts', source, ts.ScriptTarget.Latest, true);
  const problems: string[] = [];
  const variables: ConfigVariable[] = [];
  let group: string | undefined;
  for (const property of schemaLiteral(file).properties) {
    if (!ts.isPropertyAssignment(property) || !ts.isIdentifier(property.name)) {
      problems.push(`${property.getText(file).slice(0, 40)}: write each variable as NAME: schema`);
      continue;
    }
    const name = property.name.text;
    const comments = (ts.getLeadingCommentRanges(source, property.pos) ?? []).map((range) =>
      source.slice(range.pos, range.end),
    );
    for (const comment of comments) {
      const heading = /^\/\/\s*##\s*(.+)$/.exec(comment);
      if (heading) group = heading[1]!.trim();
    }
    const doc = comments.filter((comment) => comment.startsWith('/**')).at(-1);
    const [description = '', defaultValue = ''] = doc
      ? docText(doc)
          .split('@defaultValue')
          .map((part) => part.trim())
      : [];
    if (!description) problems.push(`${name} has no TSDoc description`);
    if (!defaultValue) problems.push(`${name} has no @defaultValue in its TSDoc`);
    if (!group) problems.push(`${name} has no "// ## Group" comment above it`);
    variables.push({ group: group ?? '', name, description, defaultValue });
  }
  if (problems.length > 0) {
    throw new Error(
      `src/config.ts documents its variables incompletely:\n  ${problems.join('\n  ')}`,
    );
  }
  return variables;
}

const cell = (text: string) => text.replace(/\|/g, '\\|');

/** Whether a default as written is a value (`8585`, `runc`, `1g`) rather than words (none, PyPI). */
export const isValue = (text: string): boolean =>
  !/\s|`/.test(text) && !['none', 'all'].includes(text) && /^[a-z0-9]|[\d/:.,_-]/.test(text);

const defaultCell = (text: string) => cell(isValue(text) ? `\`${text}\`` : text);

/** The reference in Markdown: one table per group, in the schema's order (not yet formatted). */
export function renderReference(variables: readonly ConfigVariable[]): string {
  const groups = new Map<string, ConfigVariable[]>();
  for (const variable of variables) {
    groups.set(variable.group, [...(groups.get(variable.group) ?? []), variable]);
  }
  return [...groups]
    .map(([group, members]) =>
      [
        `### ${group}`,
        '',
        '| variable | default | meaning |',
        '| --- | --- | --- |',
        ...members.map(
          (v) => `| \`${v.name}\` | ${defaultCell(v.defaultValue)} | ${cell(v.description)} |`,
        ),
      ].join('\n'),
    )
    .join('\n\n');
}

/** `readme` with the reference between its markers, formatted by the repository's prettier. */
export async function withReference(readme: string, reference: string): Promise<string> {
  const start = readme.indexOf(START_MARKER);
  const end = readme.indexOf(END_MARKER);
  if (start < 0 || end < start) {
    throw new Error(`README.md needs ${START_MARKER} and then ${END_MARKER} around the reference`);
  }
  const replaced =
    readme.slice(0, start + START_MARKER.length) + `\n\n${reference}\n\n` + readme.slice(end);
  const options = (await resolveConfig(README_PATH)) ?? {};
  return format(replaced, { ...options, filepath: README_PATH });
}

/** README.md as it should be, given src/config.ts. */
export async function expectedReadme(
  readme = readFileSync(README_PATH, 'utf8'),
  configSource = readFileSync(CONFIG_PATH, 'utf8'),
): Promise<string> {
  return withReference(readme, renderReference(readConfigVariables(configSource)));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const before = readFileSync(README_PATH, 'utf8');
  const after = await expectedReadme(before);
  if (after === before) {
    console.log('README.md: the configuration reference is up to date');
  } else {
    writeFileSync(README_PATH, after);
    console.log('README.md: wrote the configuration reference from src/config.ts');
  }
}
