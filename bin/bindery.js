#!/usr/bin/env node
// The `bindery` command: runs the CLI compiled into dist/ by `npm run build` (which `npm ci`
// and deploy/setup.sh run), so no TypeScript is compiled at each start.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const cli = fileURLToPath(import.meta.resolve('../dist/cli.js'));
if (!existsSync(cli)) {
  const root = fileURLToPath(import.meta.resolve('..'));
  console.error(`bindery: the command is not compiled yet; run \`npm run build\` in ${root}.`);
  process.exit(1);
}
await import(cli);
