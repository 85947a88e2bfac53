/** A PEP 440 version specifier Bindery cannot read, such as `>=three`. */
export class InvalidSpecifierError extends Error {
  constructor(readonly specifier: string) {
    super(`invalid version specifier "${specifier}"`);
    this.name = this.constructor.name;
  }
}

const CLAUSE = /^(~=|===|==|!=|<=|>=|<|>)\s*(\S+)$/;
// Epoch, release, pre-release, post-release, dev-release and local label, as PEP 440 spells them.
const VERSION =
  /^v?(?:\d+!)?(\d+(?:\.\d+)*)([-_.]?(?:a|b|c|rc|alpha|beta|pre|preview)[-_.]?\d*)?(-\d+|[-_.]?(?:post|rev|r)[-_.]?\d*)?([-_.]?dev[-_.]?\d*)?(?:\+[a-z0-9]+(?:[-_.][a-z0-9]+)*)?$/i;

/**
 * How the final release `candidate` compares with the version written `written`: release
 * numbers first, padded with zeros (`3.11` is `3.11.0`); at equal release numbers a final
 * release comes after pre- and dev-releases and before post-releases.
 */
function compare(candidate: number[], written: string, specifier: string): number {
  const match = VERSION.exec(written);
  if (!match) throw new InvalidSpecifierError(specifier);
  const release = match[1]!.split('.').map(Number);
  for (let n = 0; n < Math.max(release.length, candidate.length); n++) {
    const difference = (candidate[n] ?? 0) - (release[n] ?? 0);
    if (difference !== 0) return Math.sign(difference);
  }
  if (match[3]) return -1;
  return match[2] || match[4] ? 1 : 0;
}

/** `==3.11.*`: whether the candidate's release starts with the prefix's numbers. */
function startsWith(candidate: number[], prefix: string, specifier: string): boolean {
  if (!/^\d+(\.\d+)*$/.test(prefix)) throw new InvalidSpecifierError(specifier);
  return prefix
    .split('.')
    .map(Number)
    .every((number, n) => (candidate[n] ?? 0) === number);
}

/**
 * Whether the final release `version` (`X.Y`) satisfies a PEP 440 specifier set such as
 * `>=3.9,<3.13`, as `Version(version) in SpecifierSet(specifiers)` answers in the
 * `packaging` library that repo2docker uses. Throws InvalidSpecifierError for text that is not
 * a specifier set.
 */
export function specifierAllows(specifiers: string, version: string): boolean {
  const candidate = version.split('.').map(Number);
  return specifiers
    .split(',')
    .map((clause) => clause.trim())
    .filter((clause) => clause !== '')
    .every((clause) => {
      const match = CLAUSE.exec(clause);
      if (!match) throw new InvalidSpecifierError(clause);
      const [, operator, written] = match as unknown as [string, string, string];
      if (operator === '===') return written.toLowerCase() === version.toLowerCase();
      if (written.endsWith('.*')) {
        if (operator !== '==' && operator !== '!=') throw new InvalidSpecifierError(clause);
        return startsWith(candidate, written.slice(0, -2), clause) === (operator === '==');
      }
      const order = compare(candidate, written, clause);
      switch (operator) {
        case '==':
          return order === 0;
        case '!=':
          return order !== 0;
        case '<=':
          return order <= 0;
        case '>=':
          return order >= 0;
        case '<':
          return order < 0;
        case '>':
          return order > 0;
        default: {
          // `~=3.9.1` is `>=3.9.1, ==3.9.*`; it needs at least two release numbers.
          const release = VERSION.exec(written)?.[1]?.split('.') ?? [];
          if (release.length < 2) throw new InvalidSpecifierError(clause);
          return order >= 0 && startsWith(candidate, release.slice(0, -1).join('.'), clause);
        }
      }
    });
}
