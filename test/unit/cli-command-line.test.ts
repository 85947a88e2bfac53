import { describe, expect, test } from '@jest/globals';
import { parseCommandLine, UsageError } from '../../src/cli/command-line.js';

/** The UsageError `argv` raises: its sentence and the usage printed after it. */
function usageError(argv: string[]): UsageError {
  try {
    parseCommandLine(argv);
  } catch (error) {
    if (error instanceof UsageError) return error;
    throw error;
  }
  throw new Error(`${argv.join(' ')} was accepted`);
}

describe('parseCommandLine', () => {
  test('reads each command with its own options', () => {
    expect(parseCommandLine(['build', 'repo', '--ref', 'main', '--image', 'x:1'])).toEqual({
      action: 'run',
      command: 'build',
      source: 'repo',
      options: { ref: 'main', image: 'x:1', publish: '127.0.0.1', remove: false, roles: [] },
    });
    expect(parseCommandLine(['launch', 'repo', '--publish', '0.0.0.0'])).toMatchObject({
      command: 'launch',
      options: { publish: '0.0.0.0' },
    });
    expect(parseCommandLine(['sandbox', '--remove'])).toMatchObject({
      command: 'sandbox',
      options: { remove: true },
    });
    expect(parseCommandLine(['serve'])).toMatchObject({ action: 'run', command: 'serve' });
  });

  test("--help anywhere before -- asks for help, the command's own when there is one", () => {
    expect(parseCommandLine(['--help'])).toMatchObject({ action: 'help' });
    expect(parseCommandLine(['-h'])).toMatchObject({ action: 'help' });
    const serve = parseCommandLine(['serve', '--help']);
    expect(serve).toMatchObject({
      action: 'help',
      text: expect.stringMatching(/^usage: bindery serve \[--role ROLE\]...\n/),
    });
    // Help wins over a mistake on the same line: someone asking how it works gets the answer.
    expect(parseCommandLine(['build', '--bogus', '-h'])).toMatchObject({
      action: 'help',
      text: expect.stringContaining('--image NAME'),
    });
    expect(parseCommandLine(['help', 'launch'])).toMatchObject({
      text: expect.stringContaining('--publish ADDR'),
    });
    expect(parseCommandLine(['build', '--', '--help'])).toMatchObject({
      action: 'run',
      source: '--help',
    });
    expect(parseCommandLine(['--version'])).toEqual({ action: 'version' });
  });

  test('--role names the roles a process runs, repeated for more; none means the command picks', () => {
    expect(parseCommandLine(['worker', '--role', 'culler', '--role', 'build'])).toMatchObject({
      action: 'run',
      command: 'worker',
      options: { roles: ['culler', 'build'] },
    });
    expect(parseCommandLine(['serve'])).toMatchObject({ options: { roles: [] } });
  });

  test('a mistake is one sentence, followed by the usage of the command it concerns', () => {
    const cases: [string[], string, RegExp][] = [
      [[], 'No command given.', /bindery build <path\|url>/],
      [['bogus'], 'There is no command "bogus".', /bindery launch <path\|url>/],
      [['--bogus'], '--bogus is not an option here; a command comes first.', /bindery serve/],
      [['build', '--bogus', 'repo'], 'build has no option --bogus.', /^usage: bindery build /],
      [['build', '-x', 'repo'], 'build has no option -x.', /^usage: bindery build /],
      [['serve', '--ref', 'x'], 'serve has no option --ref.', /^usage: bindery serve/],
      [['build', 'repo', '--ref'], 'The option --ref needs a value.', /^usage: bindery build /],
      [
        ['sandbox', '--remove=yes'],
        'The option --remove takes no value.',
        /^usage: bindery sandbox/,
      ],
      [['build'], 'build needs the <path|url> of a repository.', /^usage: bindery build /],
      [['build', 'a', 'b'], 'build takes one <path|url>, not also "b".', /^usage: bindery build /],
      [['worker', 'now'], 'worker takes no arguments, not also "now".', /^usage: bindery worker/],
      [['help', 'bogus'], 'There is no command "bogus".', /bindery serve/],
      [
        ['worker', '--role', 'builder'],
        'There is no role "builder"; roles are web, build, github, culler.',
        /^usage: bindery worker \[--role ROLE\]/,
      ],
      [['serve', '--role'], 'The option --role needs a value.', /^usage: bindery serve/],
    ];
    for (const [argv, sentence, usage] of cases) {
      const error = usageError(argv);
      expect([argv, error.message]).toEqual([argv, sentence]);
      expect(error.usage).toMatch(usage);
    }
  });
});
