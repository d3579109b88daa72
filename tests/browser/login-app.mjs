// The main journey against examples/axum-login-app, in a real Chromium:
// log in through axum-login's form, open the API key, step up with a TOTP
// code on stepup's page, come back to the key; log out and in again, and
// the key asks again (the assurance was bound to the login that ended).
//
//   node login-app.mjs --url http://localhost:PORT/ --log APP_LOG
//
// The TOTP secret is read from the app's log ("alice's TOTP secret: …").
import { mkdir, readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { launch } from './lib/chromium.mjs';
import { Checks, armDeadline, expect, expectCleanPages, runToEnd } from './lib/harness.mjs';
import { secondsUntilNextStep, totp } from './lib/totp.mjs';
import { recordErrors, recordViolations } from './lib/watch.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const { values: options } = parseArgs({
  options: {
    url: { type: 'string' },
    name: { type: 'string', default: 'axum-login-app' },
    artifacts: { type: 'string' },
    results: { type: 'string' },
    deadline: { type: 'string', default: '90' },
    log: { type: 'string' },
  },
});
if (!options.url || !options.log) {
  console.error('usage: node login-app.mjs --url http://localhost:PORT/ --log APP_LOG');
  process.exit(2);
}
const base = new URL(options.url);
const at = (path) => new URL(path, base).href;
const pathOf = (url) => `${new URL(url).pathname}${new URL(url).search}`;
const label = options.name;
const targetDir = process.env.CARGO_TARGET_DIR ?? join(here, '../../target');
const artifacts = resolve(options.artifacts ?? join(targetDir, 'browser'));
await mkdir(artifacts, { recursive: true });
const log = await readFile(options.log, 'utf8');
const secret = log.match(/alice's TOTP secret: ([A-Z2-7]+)/)?.[1];
const password = log.match(/alice's password: (.+)/)?.[1];
expect(secret && password, 'the app printed no secret or password for alice', options.log);

const checks = new Checks(`${label} journey`);
const browsers = [];
const closeAll = () => Promise.all(browsers.map((b) => b.close()));
const deadline = armDeadline(checks, options.deadline, options.results, closeAll);

async function logIn(page) {
  await page.goto(at('/'));
  await page.getByLabel('Name', { exact: true }).fill('alice');
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('heading', { name: 'Hello, alice' }).waitFor();
}

async function run() {
  const browser = await launch();
  browsers.push(browser);
  const { context } = browser;
  const violations = await recordViolations(context);
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(10_000);
  const errors = recordErrors(page);

  await checks.check('log in as alice through axum-login\'s form', async () => {
    await logIn(page);
    return `at ${pathOf(page.url())}`;
  });

  await checks.check('the API key asks for a step-up on stepup\'s page', async () => {
    await page.getByRole('link', { name: 'Show my API key' }).click();
    await page.waitForURL((u) => u.pathname === '/step-up');
    expect(new URL(page.url()).searchParams.get('return_to') === '/api-key', 'return_to', page.url());
    await page.getByText('The API key opens your account').waitFor();
    await page.screenshot({ path: join(artifacts, `${label}-challenge.png`), fullPage: true });
    return `303 to ${pathOf(page.url())}`;
  });

  await checks.check('a TOTP code on the page leads back to the key, which stays open', async () => {
    // A fresh step, so the code was never used.
    await new Promise((r) => setTimeout(r, (secondsUntilNextStep() + 0.2) * 1000));
    await page.getByLabel('The 6-digit code from your authenticator app').fill(totp(secret));
    await page.keyboard.press('Enter');
    await page.waitForURL((u) => u.pathname === '/api-key');
    await page.getByText('ak_live_0123456789').waitFor();
    await page.goto(at('/api-key'));
    await page.getByText('ak_live_0123456789').waitFor();
    return 'the key shows, twice, with one step-up';
  });

  await checks.check('logged out and in again, the key asks again', async () => {
    await page.goto(at('/'));
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByRole('heading', { name: 'Log in' }).waitFor();
    await logIn(page);
    await page.goto(at('/api-key'));
    await page.waitForURL((u) => u.pathname === '/step-up');
    const text = await page.content();
    expect(!text.includes('ak_live_'), 'the key shown after a new login');
    return `at ${pathOf(page.url())}`;
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
