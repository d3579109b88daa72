// The journey against examples/oidc-app, in a real Chromium: login and
// step-up both at an OpenID Provider (tests/oidc-provider, which the app
// starts; it logs in as alice without asking). A form typed before the
// step-up goes ahead after the trip to the provider and back; the API key
// then opens without asking again; after logging out and in, it asks
// again. Once with JavaScript off: the trip needs none.
//
//   node oidc-app.mjs --url http://localhost:PORT/
import { mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { launch } from './lib/chromium.mjs';
import { Checks, armDeadline, expect, expectCleanPages, runToEnd } from './lib/harness.mjs';
import { recordErrors, recordViolations } from './lib/watch.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const { values: options } = parseArgs({
  options: {
    url: { type: 'string' },
    name: { type: 'string', default: 'oidc-app' },
    artifacts: { type: 'string' },
    results: { type: 'string' },
    deadline: { type: 'string', default: '90' },
    // The app's log (scripts/browser passes it to every app's script).
    log: { type: 'string' },
  },
});
if (!options.url) {
  console.error('usage: node oidc-app.mjs --url http://localhost:PORT/');
  process.exit(2);
}
const base = new URL(options.url);
const at = (path) => new URL(path, base).href;
const pathOf = (url) => `${new URL(url).pathname}${new URL(url).search}`;
const label = options.name;
const targetDir = process.env.CARGO_TARGET_DIR ?? join(here, '../../target');
const artifacts = resolve(options.artifacts ?? join(targetDir, 'browser'));
await mkdir(artifacts, { recursive: true });

const checks = new Checks(`${label} journey`);
const browsers = [];
const closeAll = () => Promise.all(browsers.map((b) => b.close()));
const deadline = armDeadline(checks, options.deadline, options.results, closeAll);

async function logIn(page) {
  await page.goto(at('/'));
  await page.getByRole('button', { name: 'Log in at your identity provider' }).click();
  await page.getByRole('heading', { name: 'Hello, alice' }).waitFor();
}

/** Opens a browser; its page, and what it must not produce. */
async function open(options = {}) {
  const browser = await launch(options);
  browsers.push(browser);
  const { context } = browser;
  const violations = await recordViolations(context);
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(10_000);
  const errors = recordErrors(page);
  // Every request to the app's finish route, with the headers Chromium sent.
  const finishes = [];
  page.on('request', (request) => {
    if (new URL(request.url()).pathname.endsWith('/finish')) finishes.push(request);
  });
  return { page, violations, errors, finishes };
}

async function run() {
  const { page, violations, errors, finishes } = await open();

  await checks.check('log in at the identity provider', async () => {
    await logIn(page);
    return `at ${pathOf(page.url())}`;
  });

  await checks.check('a changed e-mail asks for a step-up, offering the identity provider', async () => {
    await page.getByLabel('New e-mail').fill('alice@new.example');
    await page.getByRole('button', { name: 'Change e-mail' }).click();
    await page.waitForURL((u) => u.pathname === '/step-up');
    await page.getByRole('heading', { name: 'Confirm at your identity provider' }).waitFor();
    await page.getByText('Continue: Change your e-mail to alice@new.example').waitFor();
    await page.screenshot({ path: join(artifacts, `${label}-challenge.png`), fullPage: true });
    return `303 to ${pathOf(page.url())}`;
  });

  await checks.check('to the provider and back: the typed form waits, then goes ahead', async () => {
    await page.getByRole('button', { name: 'Continue at your identity provider' }).click();
    // The callback's page continues by itself (a refresh from this origin).
    await page.waitForURL((u) => u.pathname === '/step-up/resume');
    expect(finishes.length === 1, 'one finish', finishes.map((r) => r.url()));
    const site = (await finishes[0].allHeaders())['sec-fetch-site'];
    expect(site === 'same-origin', 'the finish comes from this origin', site);
    await page.screenshot({ path: join(artifacts, `${label}-resume.png`), fullPage: true });
    await page.getByText('Change your e-mail to alice@new.example').first().waitFor();
    await page.getByRole('button', { name: 'Change your e-mail to alice@new.example' }).click();
    await page.getByText('Your e-mail: alice@new.example').waitFor();
    return 'the e-mail changed after one trip';
  });

  await checks.check('the API key opens without asking again', async () => {
    await page.goto(at('/api-key'));
    await page.getByText('ak_live_0123456789').waitFor();
    expect(new URL(page.url()).pathname === '/api-key', 'no challenge', page.url());
    return 'level 2 within five minutes, from the provider';
  });

  await checks.check('logged out and in again, the key asks again', async () => {
    await page.goto(at('/'));
    await page.getByRole('button', { name: 'Log out' }).click();
    await logIn(page);
    await page.goto(at('/api-key'));
    await page.waitForURL((u) => u.pathname === '/step-up');
    expect(!(await page.content()).includes('ak_live_'), 'the key shown after a new login');
    return `at ${pathOf(page.url())}`;
  });

  await checks.check('with JavaScript off, the trip works the same', async () => {
    const other = await open({ javaScriptEnabled: false });
    await logIn(other.page);
    await other.page.goto(at('/api-key'));
    await other.page.waitForURL((u) => u.pathname === '/step-up');
    await other.page.getByRole('button', { name: 'Continue at your identity provider' }).click();
    await other.page.waitForURL((u) => u.pathname === '/api-key');
    await other.page.getByText('ak_live_0123456789').waitFor();
    expectCleanPages(other.violations, other.errors, at('/favicon.ico'));
    return 'back at the key';
  });

  await checks.check(
    'no CSP violation and no console error',
    async () => expectCleanPages(violations, errors, at('/favicon.ico')),
    { always: true },
  );
}

await runToEnd(checks, run, {
  deadline,
  close: closeAll,
  what: `${label} journey`,
  results: options.results,
});
