import { createHash } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import {
  escapeSlug,
  failedImageNameFor,
  imageNameFor,
  safeBuildSlug,
} from '../../src/build/image-name.js';
import { committedImageId } from '../../src/engine/failed-build-layers.js';

const sha256Hex = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');
const SHA = '0123456789abcdef0123456789abcdef01234567';

describe('escapeSlug (escapism.escape, safe=[A-Za-z0-9], escape_char="-")', () => {
  it.each([
    // Derived by hand: "-" is 0x2D; escapism writes hex with "%X", upper case, unpadded.
    ['jupyterhub-binder-examples', 'jupyterhub-2Dbinder-2Dexamples'],
    ['Owner-Repo_Name', 'Owner-2DRepo-5FName'],
    ['a_b.c/d', 'a-5Fb-2Ec-2Fd'],
    ['https://gitlab.com/a/b.git', 'https-3A-2F-2Fgitlab-2Ecom-2Fa-2Fb-2Egit'],
    // UTF-8 bytes of å are C3 A5; € is E2 82 AC.
    ['sposmål', 'sposm-C3-A5l'],
    ['€', '-E2-82-AC'],
    // A tab is 0x09: "%X" writes "9", not "09".
    ['tab\there', 'tab-9here'],
    ['AZaz09', 'AZaz09'],
    ['', ''],
  ])('%j → %j', (text, escaped) => {
    expect(escapeSlug(text)).toBe(escaped);
  });

  it('escapes the escape character itself, so escaping is reversible', () => {
    expect(escapeSlug('-')).toBe('-2D');
    expect(escapeSlug('a-2D')).not.toBe(escapeSlug('a--2D'));
  });

  it('leaves only letters, digits and escapes', () => {
    const everyAscii = Array.from({ length: 128 }, (_, code) => String.fromCharCode(code)).join('');
    expect(escapeSlug(everyAscii)).toMatch(/^[A-Za-z0-9-]+$/);
  });
});

describe('safeBuildSlug (BinderHub _safe_build_slug)', () => {
  it('is the escaped slug, a dash and six hex digits of the SHA-256 of the raw slug, lowercased', () => {
    const slug = 'jupyterhub-binder-examples';
    expect(safeBuildSlug(slug, 243)).toBe(
      `jupyterhub-2dbinder-2dexamples-${sha256Hex(slug).slice(0, 6)}`,
    );
    // The same value computed with Python's hashlib for this slug.
    expect(safeBuildSlug(slug, 243)).toBe('jupyterhub-2dbinder-2dexamples-1b6e84');
  });

  it('cuts the escaped slug to limit - hashLength - 1 and keeps the full length at the limit', () => {
    const slug = 'owner-' + 'r'.repeat(100);
    const safe = safeBuildSlug(slug, 40);
    expect(safe).toHaveLength(40);
    expect(safe).toBe(
      `${escapeSlug(slug).slice(0, 33).toLowerCase()}-${sha256Hex(slug).slice(0, 6)}`,
    );
  });

  it('keeps two long slugs that differ only past the cut apart', () => {
    const common = 'x'.repeat(300);
    const a = safeBuildSlug(`${common}-a`, 100);
    const b = safeBuildSlug(`${common}-b`, 100);
    expect(a.slice(0, 93)).toBe(b.slice(0, 93));
    expect(a).not.toBe(b);
  });

  it('hashes the slug before escaping, so escaping cannot change the hash', () => {
    const slug = 'Team/Project_1';
    expect(safeBuildSlug(slug, 100).slice(-6)).toBe(sha256Hex(slug).slice(0, 6));
  });

  it('takes another hash length', () => {
    const safe = safeBuildSlug('main', 10, 2);
    expect(safe).toBe(`main-${sha256Hex('main').slice(0, 2)}`);
  });

  it('cuts a multibyte escape in the middle as Python slicing would', () => {
    // "å" escapes to "-C3-A5" (6 characters); a cut after 3 characters keeps "-C3".
    const safe = safeBuildSlug('å', 3 + 6 + 1);
    expect(safe).toBe(`-c3-${sha256Hex('å').slice(0, 6)}`);
  });
});

describe('imageNameFor (BinderHub image names)', () => {
  it('is {prefix}{safe slug}:{ref}', () => {
    const slug = 'jupyterhub-binder-examples';
    expect(imageNameFor('bindery/r2d-', slug, SHA)).toBe(
      `bindery/r2d-jupyterhub-2dbinder-2dexamples-${sha256Hex(slug).slice(0, 6)}:${SHA}`,
    );
  });

  it('lowercases everything and turns underscores into dashes, prefix and ref included', () => {
    const name = imageNameFor('my_registry:5000/Binder_', 'Owner-Repo', 'Release_1');
    expect(name).toBe(
      `my-registry:5000/binder-owner-2drepo-${sha256Hex('Owner-Repo').slice(0, 6)}:release-1`,
    );
  });

  it('fits the repository part in 255 characters, prefix included', () => {
    const prefix = 'registry.example.org/bindery/r2d-';
    const slug = `https://git.example.org/${'deep/'.repeat(100)}repo.git`;
    const name = imageNameFor(prefix, slug, SHA);
    const repository = name.slice(0, name.lastIndexOf(':'));
    expect(repository).toHaveLength(255);
    expect(repository.startsWith(prefix)).toBe(true);
    expect(repository.endsWith(`-${sha256Hex(slug).slice(0, 6)}`)).toBe(true);
    expect(name.endsWith(`:${SHA}`)).toBe(true);
  });

  it('names one commit of one repository the same way every time, and other commits differently', () => {
    const slug = 'owner-repo';
    expect(imageNameFor('p/', slug, SHA)).toBe(imageNameFor('p/', slug, SHA));
    expect(imageNameFor('p/', slug, SHA)).not.toBe(imageNameFor('p/', slug, 'f'.repeat(40)));
    expect(imageNameFor('p/', slug, SHA)).not.toBe(imageNameFor('p/', 'owner-repo2', SHA));
  });

  it('yields a valid Docker reference for awkward slugs', () => {
    // Docker's grammar: path components of [a-z0-9] joined by ".", "_", "__" or dashes; then a tag.
    const component = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
    const reference = new RegExp(`^${component}(?:/${component})*:[\\w][\\w.-]{0,127}$`);
    for (const slug of ['repo_', '-lead', 'ÜNICODE/ñ', 'a b\tc', 'https://h/x.git', '...']) {
      expect(imageNameFor('bindery/r2d-', slug, SHA)).toMatch(reference);
    }
  });
});

describe('failedImageNameFor (where a failed build keeps its layers)', () => {
  const sha = 'a'.repeat(40);
  it('keeps the repository and prefix, and puts failed- before the ref', () => {
    expect(failedImageNameFor(`bindery/gh-o-r-abc123:${sha}`)).toBe(
      `bindery/gh-o-r-abc123:failed-${sha}`,
    );
    expect(failedImageNameFor('localhost:5000/bindery/x:1')).toBe(
      'localhost:5000/bindery/x:failed-1',
    );
    expect(failedImageNameFor('localhost:5000/bindery/x')).toBe(
      'localhost:5000/bindery/x:failed-latest',
    );
  });
  it('is never the name of a built image (refs are hex)', () => {
    const built = imageNameFor('bindery/', 'gh-o-r', sha);
    expect(failedImageNameFor(built)).not.toBe(built);
    expect(failedImageNameFor(built).startsWith('bindery/')).toBe(true);
  });
  it("stays within Docker's 128 characters of tag", () => {
    const tag = failedImageNameFor(`bindery/x:${'b'.repeat(128)}`).split(':')[1]!;
    expect(tag).toHaveLength(128);
  });
});

describe("committedImageId (Docker's classic builder log)", () => {
  it('reads the id after a step, not the container a step runs in', () => {
    expect(committedImageId(' ---> 0123456789ab')).toBe('0123456789ab');
    expect(committedImageId(' ---> Running in 0123456789ab')).toBeUndefined();
    expect(committedImageId(' ---> Using cache')).toBeUndefined();
    expect(committedImageId('echo  ---> 0123456789ab')).toBeUndefined();
  });
});
