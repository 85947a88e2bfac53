import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { loadConfig } from '../../src/config.js';
import {
  CONFIG_PATH,
  END_MARKER,
  README_PATH,
  START_MARKER,
  expectedReadme,
  isValue,
  readConfigVariables,
  renderReference,
} from '../../scripts/config-reference.js';

const configSource = readFileSync(CONFIG_PATH, 'utf8');

/** The lines of `text` between the reference's markers. */
function referenceLines(text: string): string[] {
  return text.slice(text.indexOf(START_MARKER), text.indexOf(END_MARKER)).split('\n');
}

/** The README's lines that should not be there (-) and those missing (+), in order. */
function lineDiff(actual: string, expected: string): string {
  const have = referenceLines(actual);
  const want = referenceLines(expected);
  return [
    ...have.filter((line) => !want.includes(line)).map((line) => `- ${line}`),
    ...want.filter((line) => !have.includes(line)).map((line) => `+ ${line}`),
  ].join('\n');
}

describe("README's configuration reference", () => {
  it('is what `npm run docs:config` makes from src/config.ts', async () => {
    const readme = readFileSync(README_PATH, 'utf8');
    const expected = await expectedReadme(readme, configSource);
    if (readme !== expected) {
      throw new Error(
        "README.md's configuration reference differs from src/config.ts (each variable's TSDoc is its source; edit it there): run `npm run docs:config` and commit README.md.\n" +
          (lineDiff(readme, expected) || '(the difference is outside the reference: formatting)'),
      );
    }
  });

  it('gives each default that is a value as loadConfig has it', () => {
    const defaults = loadConfig({});
    const checked = readConfigVariables(configSource).filter(
      // Values, not prose ("none", "the local socket") nor a pattern (http://localhost:PORT).
      ({ defaultValue }) => isValue(defaultValue) && !/[A-Z]/.test(defaultValue),
    );
    for (const { name, defaultValue } of checked) {
      expect({ [name]: loadConfig({ [name]: defaultValue }) }).toEqual({ [name]: defaults });
    }
    expect(checked.map(({ name }) => name)).toEqual(
      expect.arrayContaining(['PORT', 'REDIS_URL', 'BINDERY_IMAGE_BUDGET', 'BINDERY_EGRESS_PORTS']),
    );
  });

  it('refuses a variable without a description, a default or a group, naming it', () => {
    const source = (body: string) => `const schema = z.object({\n${body}\n});`;
    expect(() => readConfigVariables(source('  // ## Service\n  PORT: z.string(),'))).toThrow(
      /PORT has no TSDoc description[\s\S]*PORT has no @defaultValue/,
    );
    expect(() => readConfigVariables(source('  /** Port. */\n  PORT: z.string(),'))).toThrow(
      /PORT has no @defaultValue[\s\S]*PORT has no "\/\/ ## Group"/,
    );
    expect(
      readConfigVariables(
        source(
          '  // ## Service\n  /** HTTP port | its number. @defaultValue 8585 */\n  PORT: z.string(),\n' +
            '  /** Where the\n   * service is. @defaultValue none */\n  URL: z.string(),',
        ),
      ),
    ).toEqual([
      {
        group: 'Service',
        name: 'PORT',
        description: 'HTTP port | its number.',
        defaultValue: '8585',
      },
      { group: 'Service', name: 'URL', description: 'Where the service is.', defaultValue: 'none' },
    ]);
  });

  it('renders one table per group, escaping pipes and marking values as code', () => {
    expect(
      renderReference([
        {
          group: 'Service',
          name: 'PORT',
          description: 'HTTP port | its number.',
          defaultValue: '8585',
        },
        { group: 'Service', name: 'HOST', description: 'Host.', defaultValue: 'none' },
        { group: 'GitHub', name: 'GHE_HOST', description: 'Host.', defaultValue: 'github.com' },
      ]),
    ).toBe(
      [
        '### Service',
        '',
        '| variable | default | meaning |',
        '| --- | --- | --- |',
        '| `PORT` | `8585` | HTTP port \\| its number. |',
        '| `HOST` | none | Host. |',
        '',
        '### GitHub',
        '',
        '| variable | default | meaning |',
        '| --- | --- | --- |',
        '| `GHE_HOST` | `github.com` | Host. |',
      ].join('\n'),
    );
  });
});
