// Launches the system Chromium (Debian's /usr/bin/chromium) through
// playwright-core: headless, no network of its own, a fresh profile that is
// removed on close. Never `npx playwright install`: the browser comes from
// apt (scripts/browser installs it).
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * A browser context in a fresh profile. `close()` closes the browser and
 * removes the profile; call it in a `finally`.
 */
export async function launch(options = {}) {
  const profile = await mkdtemp(join(tmpdir(), 'stepup-chromium-'));
  let context;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      // Fixed, so computed styles and screenshots do not depend on the host.
      colorScheme: 'light',
      locale: 'en-US',
      viewport: { width: 800, height: 1000 },
      ...options,
    });
  } catch (error) {
    await rm(profile, { recursive: true, force: true });
    throw error;
  }
  // Also when the process ends early (process.exit, or Playwright's own
  // SIGTERM / SIGINT handling, which closes the browser first).
  process.once('exit', () => rmSync(profile, { recursive: true, force: true }));
  return {
    context,
    async close() {
      await context.close().catch(() => {});
      await rm(profile, { recursive: true, force: true });
    },
  };
}
