/**
 * Build benchmark. For test/fixtures/repos/notebook (numpy, pandas and matplotlib pinned in
 * requirements.txt, real wheels from a package index this script serves):
 * - cold: a repository whose dependency file is new to this Docker (its own layers all built;
 *   the base image and the layers every rendered image shares are cached, as on a live builder);
 * - rebuild: the same repository after a notebook-only change;
 * - cache hit: asking for an image that exists.
 * Medians over RUNS, and the machine, are written to BENCHMARKS.md between markers.
 *
 *   npm run bench:build            (RUNS=5 HITS=50 to change the counts)
 */
import { randomBytes } from 'node:crypto';
import { appendFile, cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseSource } from '../src/repos/repo-spec.js';
import { startIndexBuilder } from './index-builder.js';
import { machine, median, writeSection } from './report.js';

const RUNS = Number(process.env.RUNS ?? 3);
const HITS = Number(process.env.HITS ?? 30);
const ROOT = join(import.meta.dirname, '..');

const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

function notebook(text: string): string {
  const cell = { cell_type: 'markdown', metadata: {}, source: [text] };
  return JSON.stringify({ cells: [cell], metadata: {}, nbformat: 4, nbformat_minor: 5 });
}

async function main(): Promise<void> {
  const { builder, built, close } = await startIndexBuilder();
  const cold: number[] = [];
  const rebuild: number[] = [];
  const hits: number[] = [];
  try {
    for (let run = 0; run < RUNS; run++) {
      const dir = await mkdtemp(join(tmpdir(), 'bindery-bench-'));
      try {
        await cp(join(ROOT, 'test/fixtures/repos/notebook'), dir, { recursive: true });
        // A dependency file Docker has not seen: every layer of this repository is new.
        await appendFile(
          join(dir, 'requirements.txt'),
          `# bench ${randomBytes(8).toString('hex')}\n`,
        );
        await writeFile(join(dir, 'index.ipynb'), notebook('first version'));
        const spec = parseSource(dir);

        let result = await builder.build(spec);
        cold.push(result.durationMs);
        built(result.imageName);

        await writeFile(join(dir, 'index.ipynb'), notebook(`changed ${run}`));
        result = await builder.build(spec);
        if (result.cached) throw new Error('a changed notebook must make a new image');
        rebuild.push(result.durationMs);
        built(result.imageName);

        for (let hit = 0; hit < HITS / RUNS; hit++) {
          const started = performance.now();
          const again = await builder.build(spec);
          if (!again.cached) throw new Error('the unchanged repository must be a cache hit');
          hits.push(performance.now() - started);
        }
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
      console.error(
        `run ${run + 1}/${RUNS}: cold ${seconds(cold.at(-1)!)}, rebuild ${seconds(rebuild.at(-1)!)}`,
      );
    }
  } finally {
    await close();
  }

  const ratio = median(rebuild) / median(cold);
  const body = [
    `Measured ${new Date().toISOString().slice(0, 10)} on ${await machine()}.`,
    `\`npm run bench:build\`, ${RUNS} runs, ${hits.length} cache hits; medians.`,
    '',
    '| case | median | target |',
    '|---|---|---|',
    `| cold build (numpy, pandas, matplotlib from a local index) | ${seconds(median(cold))} | — |`,
    `| rebuild after a notebook-only change | ${seconds(median(rebuild))} (${(ratio * 100).toFixed(1)}% of cold) | under 15% of cold |`,
    `| cache hit (image exists) | ${median(hits).toFixed(1)} ms | under 100 ms |`,
  ].join('\n');
  console.log(await writeSection('build', 'Builds', '', body));
}

await main();
