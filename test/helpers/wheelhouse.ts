import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { access, mkdir, readFile, rename, rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const exec = promisify(execFile);
const REQUIREMENTS = fileURLToPath(new URL('../fixtures/wheelhouse.txt', import.meta.url));
const IMAGE_PYTHON = fileURLToPath(
  new URL('../../deploy/base-image/image-python.sh', import.meta.url),
);
const CACHE = '/var/cache/bindery';

/**
 * A folder of the real wheels test/fixtures/wheelhouse.txt names, and all they need, for the
 * image's Python: downloaded once by the host's pip (builds cannot reach PyPI themselves), kept
 * by the requirements' hash, and served to builds by startPackageIndex({ wheelhouse }).
 */
export async function ensureWheelhouse(): Promise<string> {
  const hash = createHash('sha256')
    .update(await readFile(REQUIREMENTS))
    .digest('hex')
    .slice(0, 12);
  const dir = `${CACHE}/test-wheelhouse-${hash}`;
  if (
    await access(dir).then(
      () => true,
      () => false,
    )
  )
    return dir;
  // Downloaded beside it, then renamed: a test file running at the same time never sees half.
  const partial = `${dir}.${process.pid}`;
  await mkdir(partial, { recursive: true });
  try {
    await exec(
      'bash',
      [
        '-c',
        '. "$1" && python3 -m pip download --quiet --disable-pip-version-check -d "$2" "${image_pip_target[@]}" -r "$3"',
        'wheelhouse',
        IMAGE_PYTHON,
        partial,
        REQUIREMENTS,
      ],
      { maxBuffer: 16 * 2 ** 20 },
    );
    await rename(partial, dir).catch(async (error: NodeJS.ErrnoException) => {
      // Another process finished first: its folder serves.
      if (error.code !== 'ENOTEMPTY' && error.code !== 'EEXIST') throw error;
    });
  } finally {
    await rm(partial, { recursive: true, force: true });
  }
  return dir;
}
