import express, { type RequestHandler } from 'express';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The pages' static files, src/web/page-assets: beside this module when run from the sources,
 * and found from dist/ in the bundled command (scripts/build-cli.js puts its chunks there).
 */
export function pageAssetsDir(here: string = import.meta.dirname): string {
  const candidates = [join(here, 'page-assets'), join(here, '..', 'src', 'web', 'page-assets')];
  const found = candidates.find((dir) => existsSync(join(dir, 'style.css')));
  if (!found) {
    throw new Error(`The pages' static files are missing: looked in ${candidates.join(' and ')}.`);
  }
  return found;
}

/**
 * Serves the stylesheet, scripts and icons. Browsers revalidate them (ETag) on each page load,
 * so a new version shows at once; an unchanged file costs a 304.
 */
export function pageAssetsRoute(dir: string = pageAssetsDir()): RequestHandler {
  return express.static(dir, {
    index: false,
    redirect: false,
    fallthrough: false,
    setHeaders: (response) => {
      response.setHeader('cache-control', 'no-cache');
      response.setHeader('x-content-type-options', 'nosniff');
    },
  });
}
