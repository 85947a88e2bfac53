import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

/** Debian's Chromium (deploy/setup.sh installs it); Playwright's own downloads are not used. */
export const CHROMIUM = '/usr/bin/chromium';

/**
 * Headless, no sandbox (tests run as root), and none of Chromium's own traffic to Google's
 * services, so a test sends nothing off this machine.
 */
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface Chromium {
  context: BrowserContext;
  /** Closes the browser and removes its profile. */
  close(): Promise<void>;
}

/**
 * Starts Chromium with a fresh profile of its own (cookies from another test never leak in).
 * `extraArgs` add to the flags above, e.g. `--host-resolver-rules=MAP *.sessions.test 127.0.0.1`.
 */
export async function launchChromium(extraArgs: readonly string[] = []): Promise<Chromium> {
  const profile = await mkdtemp(join(tmpdir(), 'bindery-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [...ARGS, ...extraArgs],
    viewport: { width: 1100, height: 800 },
  });
  return {
    context,
    async close() {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}
