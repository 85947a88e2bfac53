// Compiles the `bindery` command into dist/ (`npm run build`, run by `npm ci` and
// deploy/setup.sh): src/cli.ts and what its commands import, bundled by esbuild into one file
// per command plus shared chunks, so that a start reads a few files and `--help` only cli.js.
// Packages stay in node_modules (dockerode and friends find their files by __dirname), except
// zod: its ES build is ~95 modules (every locale), and compiling those took a third of
// `bindery build`'s CPU time. Types are checked by `npm run typecheck`, not here.
// dist/meta.json (esbuild's metafile) says which sources each output holds.
import { build } from 'esbuild';
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const manifest = JSON.parse(readFileSync(`${root}/package.json`, 'utf8'));
const BUNDLED = new Set(['zod']);
const external = Object.keys({ ...manifest.dependencies, ...manifest.devDependencies }).filter(
  (name) => !BUNDLED.has(name),
);

rmSync(`${root}/dist`, { recursive: true, force: true });
const { metafile } = await build({
  absWorkingDir: root,
  entryPoints: ['src/cli.ts'],
  outdir: 'dist',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external,
  sourcemap: true,
  metafile: true,
  logLevel: 'warning',
});
writeFileSync(`${root}/dist/meta.json`, JSON.stringify(metafile, null, 1));
// The pages' static files go beside the code that serves them, so dist/ runs on its own (the
// service image holds dist/ and not src/).
const assets = `${root}/src/web/page-assets`;
if (existsSync(assets)) cpSync(assets, `${root}/dist/page-assets`, { recursive: true });

// Errors name themselves after their class (this.constructor.name). esbuild renames a class only
// when two bundled modules declare the same name, by appending a digit; keepNames would prevent
// it but wraps every function of zod and costs ~60 ms of CPU per start, so this is checked instead.
for (const file of readdirSync(`${root}/dist`).filter((name) => name.endsWith('.js'))) {
  // `var SandboxError2 = class extends …` (the name comes from the binding), or `class X2`.
  const renamed = /\b(?:class ([A-Za-z_$][\w$]*?\d+)\b|([A-Za-z_$][\w$]*?\d+) = class\b)/.exec(
    readFileSync(`${root}/dist/${file}`, 'utf8'),
  );
  if (renamed) {
    console.error(
      `build-cli: esbuild renamed a class to ${renamed[1] ?? renamed[2]} in dist/${file}: two modules declare the same class name; rename one.`,
    );
    process.exit(1);
  }
}
