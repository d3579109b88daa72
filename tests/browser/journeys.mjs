// Whole journeys through a demo bank in real Chromium, as a person would
// make them: a transfer form kept across its step-up and resumed once (a
// stale second tab and the back button get the 409 page), statements by
// keyboard only, an e-mail code, every form method with JavaScript off, a
// transfer over 10,000 confirmed by e-mail code for its exact amount and
// payee, once, and a passkey closing the account after a refused attempt.
//
//   BANK_DEMO_TOTP_SECRET=GEZD… node tests/browser/journeys.mjs \
//       --url http://localhost:PORT/ --log BANK_LOG [--name axum-bank] \
//       [--artifacts DIR] [--results FILE] [--deadline SECONDS]
//
// The bank must be fresh and its own (scripts/browser starts a second one
// per binary for this, on a new data directory): Alice has her TOTP secret
// and her e-mail address, no passkey, no recovery codes, no TOTP code used
// yet, and the account is still open (the last journey closes it). BANK_LOG
// is the file the bank's stderr goes to: the e-mail codes are read there.
// Screenshots (`<name>-journey-<step>.png`) go to DIR (default
// target/browser/); FILE gets {passed, failed, checks} as JSON. Exit status
// 0 when every check passed.
import { mkdir, readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { launch } from './lib/chromium.mjs';
import { Checks, eventually, expect } from './lib/harness.mjs';
import { strictHeaderProblems } from './lib/headers.mjs';
import { secondsUntilNextStep, totp } from './lib/totp.mjs';
import { recordErrors, recordViolations } from './lib/watch.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const { values: options } = parseArgs({
  options: {
    url: { type: 'string', default: process.env.BANK_URL },
    name: { type: 'string' },
    artifacts: { type: 'string' },
    results: { type: 'string' },
    deadline: { type: 'string', default: '100' },
    log: { type: 'string' },
  },
});
if (!options.url || !options.log || !process.env.BANK_DEMO_TOTP_SECRET) {
  console.error('usage: BANK_DEMO_TOTP_SECRET=… node journeys.mjs --url http://localhost:PORT/ --log BANK_LOG [--name N]');
  process.exit(2);
}
const base = new URL(options.url);
expect(base.hostname === 'localhost', 'use the URL the bank prints (http://localhost:PORT/)', base.href);
const secret = process.env.BANK_DEMO_TOTP_SECRET;
const label = options.name ?? base.host;
const targetDir = process.env.CARGO_TARGET_DIR ?? join(here, '../../target');
const artifacts = resolve(options.artifacts ?? join(targetDir, 'browser'));
await mkdir(artifacts, { recursive: true });
const at = (path) => new URL(path, base).href;
const pathOf = (url) => {
  const u = new URL(url);
  return `${u.pathname}${u.search}`;
};
const ours = (url) => String(url).startsWith(base.origin);

const checks = new Checks(`${label} journeys`);
const screenshots = [];
// Every browser this run opens, closed in the end (or at the deadline).
const browsers = [];
const closeAll = () => Promise.all(browsers.map((b) => b.close()));
const deadline = setTimeout(async () => {
  checks.halt('deadline', `still running after ${options.deadline} s`);
  if (options.results) await checks.save(options.results);
  setTimeout(() => process.exit(1), 5000).unref();
  await closeAll();
}, Number(options.deadline) * 1000);

// ---------------------------------------------------------------------------
// What the journeys share.

// A TOTP code is accepted once per 30-s step per user: a later step-up with
// the app waits for the next code, as a person would.
let lastStep = -1;
async function nextTotp() {
  let waited = 0;
  if (Math.floor(Date.now() / 30_000) <= lastStep) {
    waited = secondsUntilNextStep() + 0.2;
    await sleep(waited * 1000);
  }
  const step = Math.floor(Date.now() / 30_000);
  lastStep = step;
  return { code: totp(secret, { time: step * 30_000 }), waited };
}

// The e-mail codes the bank printed on its log (InsecureConsoleSender).
async function emailCodes() {
  const text = await readFile(options.log, 'utf8').catch(() => '');
  return [...text.matchAll(/email code for [^:\n]*: (\d{6,8}) /g)].map((m) => m[1]);
}

async function newEmailCode(before) {
  const codes = await eventually(async () => {
    const all = await emailCodes();
    return all.length > before ? all : null;
  });
  expect(codes, 'no new e-mail code in the bank log', options.log);
  return codes[codes.length - 1];
}

// The approve links "Approve on your other device" printed on the bank log.
async function approveLinks() {
  const text = await readFile(options.log, 'utf8').catch(() => '');
  return [...text.matchAll(/APPROVE for alice[^:\n]*: (http\S+)/g)].map((m) => m[1]);
}

async function newApproveLink(before) {
  const links = await eventually(async () => {
    const all = await approveLinks();
    return all.length > before ? all : null;
  });
  expect(links, 'no new approve link in the bank log', options.log);
  return links[links.length - 1];
}

async function screenshot(page, step) {
  const path = join(artifacts, `${label}-journey-${step}.png`);
  await page.screenshot({ path, fullPage: true });
  screenshots.push(path);
  return path;
}

// The response `page` gets for `method` `url` (a path or a test of the URL).
// Handled at once, so one left waiting when a check fails early cannot crash
// the run later.
function next(page, method, url) {
  const matches = typeof url === 'function' ? url : (u) => u === at(url);
  const waiting = page.waitForResponse((r) => r.request().method() === method && matches(r.url()));
  waiting.catch(() => {});
  return waiting;
}

async function expectStatus(response, status) {
  if (response.status() !== status) {
    const body = await response.text().catch(() => '(body gone)');
    const sent = await response.request().allHeaders();
    const fetchHeaders = `sent Origin: ${sent.origin ?? '(none)'}, Sec-Fetch-Site: ${sent['sec-fetch-site'] ?? '(none)'}`;
    expect(false, `${response.request().method()} ${pathOf(response.url())}: status ${response.status()}, want ${status}`, fetchHeaders, body);
  }
}

async function expectRedirect(response, to) {
  await expectStatus(response, 303);
  const location = await response.headerValue('location');
  expect(location === to, `${pathOf(response.url())}: 303 to`, location, `want ${to}`);
}

async function balance(page) {
  const response = await page.request.get(at('/account'));
  expect(response.status() === 200, 'GET /account', response.status());
  return (await response.json()).balance;
}

async function logIn(page) {
  await page.goto(at('/'));
  await page.getByLabel('User', { exact: true }).fill('alice');
  await page.getByLabel('Password', { exact: true }).fill('wonderland');
  const login = next(page, 'POST', '/login');
  await page.getByRole('button', { name: 'Log in' }).click();
  await expectRedirect(await login, '/');
  await page.getByRole('heading', { name: 'Hello, alice' }).waitFor();
}

const isChallenge = (url) => new URL(url).pathname === '/step-up';
const isConfirm = (url) => new URL(url).pathname === '/step-up/resume';

async function run() {
  const browser = await launch();
  browsers.push(browser);
  const { context } = browser;
  const violations = await recordViolations(context);
  const errors = [];
  // Pages a journey gets an error status for on purpose (the 409 pages):
  // Chromium logs "Failed to load resource: … 409" for each on the console.
  const errorPages = [];
  const watch = (page) => {
    page.setDefaultTimeout(10_000);
    errors.push(recordErrors(page));
  };
  const page = context.pages()[0] ?? (await context.newPage());
  watch(page);
  context.on('page', watch);
  const axeSource = await readFile(join(here, 'node_modules/axe-core/axe.min.js'), 'utf8');
  const sessions = new Map();
  const cdpOf = async (p) => {
    if (!sessions.has(p)) sessions.set(p, await context.newCDPSession(p));
    return sessions.get(p);
  };

  // axe.min.js goes in through the DevTools protocol (never a <script> tag,
  // never bypassCSP), as csp.mjs does.
  async function seriousAxeViolations(p) {
    const cdp = await cdpOf(p);
    const { exceptionDetails } = await cdp.send('Runtime.evaluate', { expression: axeSource });
    expect(!exceptionDetails, 'axe.min.js did not load', exceptionDetails?.text ?? '');
    const found = await p.evaluate(() =>
      window.axe.run(document, { resultTypes: ['violations'] }).then((r) =>
        r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')) })),
      ),
    );
    const serious = found.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    expect(serious.length === 0, `axe on ${pathOf(p.url())}: serious or critical violations`, serious);
    return found.length === 0
      ? [`axe on ${pathOf(p.url())}: no violations`]
      : found.map((v) => `axe on ${pathOf(p.url())} (${v.impact}, allowed): ${v.id}: ${v.help}`);
  }

  // ---- 1. A transfer form kept across its step-up, resumed once. ----------

  let before;
  await checks.check('1. log in as alice through the form on /', async () => {
    await logIn(page);
    before = await balance(page);
    const shown = await page.getByText(/^Balance: \d+$/).textContent();
    expect(shown === `Balance: ${before}`, 'the home page and /account disagree', shown, before);
    await screenshot(page, '1-home');
    return [`balance ${before}`];
  });

  let challenge;
  await checks.check('1. the transfer form (25 to bob, Send) lands on the challenge page saying "Continue: Send 25 to bob"', async () => {
    await page.getByLabel('To', { exact: true }).fill('bob');
    await page.getByLabel('Amount', { exact: true }).fill('25');
    const posted = next(page, 'POST', '/transfer');
    const shown = next(page, 'GET', isChallenge);
    await page.getByRole('button', { name: 'Send', exact: true }).click();
    await expectStatus(await posted, 303);
    const response = await shown;
    await expectStatus(response, 200);
    challenge = response.url();
    const returnTo = new URL(challenge).searchParams.get('return_to') ?? '';
    expect(/^\/step-up\/resume\?pending=[0-9a-f]{32}$/.test(returnTo), 'the challenge does not return to a kept form', pathOf(challenge));
    const problems = await strictHeaderProblems(response);
    expect(problems.length === 0, 'headers', problems.join('; '));
    await page.getByText('Continue: Send 25 to bob', { exact: true }).waitFor();
    expect((await balance(page)) === before, 'money moved before the step-up');
    await screenshot(page, '1-transfer-challenge');
    return [`POST /transfer → 303 → ${pathOf(challenge)}`, ...(await seriousAxeViolations(page))];
  });

  let confirm;
  await checks.check('1. the TOTP code (typed, Enter) leads to the confirmation page: a button "Send 25 to bob", no script', async () => {
    const { code } = await nextTotp();
    await page.getByLabel('The 6-digit code from your authenticator app').click();
    await page.keyboard.type(code, { delay: 20 });
    const posted = next(page, 'POST', '/step-up/totp');
    const shown = next(page, 'GET', isConfirm);
    await page.keyboard.press('Enter');
    const stepUp = await posted;
    const returnTo = new URL(challenge).searchParams.get('return_to');
    await expectRedirect(stepUp, returnTo);
    const response = await shown;
    await expectStatus(response, 200);
    confirm = response.url();
    expect(pathOf(confirm) === returnTo, 'confirmation page', pathOf(confirm));
    const problems = await strictHeaderProblems(response);
    expect(problems.length === 0, 'headers', problems.join('; '));
    await page.getByRole('button', { name: 'Send 25 to bob', exact: true }).waitFor();
    await page.getByRole('link', { name: 'Cancel: go back without doing it' }).waitFor();
    const scripts = await page.locator('script').count();
    expect(scripts === 0, 'script elements on the confirmation page', scripts);
    expect((await balance(page)) === before, 'showing the confirmation page moved money');
    await screenshot(page, '1-transfer-confirm');
    return [`confirmation page: ${pathOf(confirm)}`, ...(await seriousAxeViolations(page))];
  });

  let stale;
  await checks.check('1. the same confirmation page in a second tab still shows the form', async () => {
    stale = await context.newPage();
    const response = await stale.goto(confirm);
    await expectStatus(response, 200);
    await stale.getByRole('button', { name: 'Send 25 to bob', exact: true }).waitFor();
    await screenshot(stale, '1-second-tab');
  });

  await checks.check('1. the button in the first tab sends it once: home page, balance down by exactly 25', async () => {
    const posted = next(page, 'POST', '/transfer');
    await page.getByRole('button', { name: 'Send 25 to bob', exact: true }).click();
    const response = await posted;
    await expectRedirect(response, '/');
    await page.waitForURL(at('/'));
    await page.getByRole('heading', { name: 'Hello, alice' }).waitFor();
    const after = await balance(page);
    expect(after === before - 25, 'balance', { before, after });
    expect((await page.getByText(/^Balance: \d+$/).textContent()) === `Balance: ${after}`, 'the home page shows another balance');
    const sent = await response.request().allHeaders();
    await screenshot(page, '1-sent');
    return [`balance ${before} → ${after}; the re-post sent Origin: ${sent.origin ?? '(none)'}, Sec-Fetch-Site: ${sent['sec-fetch-site'] ?? '(none)'}`];
  });

  await checks.check('1. the button in the stale second tab gets 409 "Already submitted"; nothing sent again', async () => {
    const posted = next(stale, 'POST', '/transfer');
    await stale.getByRole('button', { name: 'Send 25 to bob', exact: true }).click();
    const response = await posted;
    errorPages.push({ url: at('/transfer'), status: 409 });
    await expectStatus(response, 409);
    expect((await response.headerValue('content-type'))?.startsWith('text/html'), 'not HTML', await response.headerValue('content-type'));
    await stale.getByRole('heading', { name: 'Already submitted' }).waitFor();
    expect((await stale.title()) === 'Already submitted', 'title', await stale.title());
    const link = stale.getByRole('link', { name: 'See what your first submission did' });
    expect((await link.getAttribute('href')) === '/', 'the link to where the first one went', await link.getAttribute('href'));
    expect((await balance(stale)) === before - 25, 'the duplicate moved money');
    await screenshot(stale, '1-already-submitted');
    const headers = await response.allHeaders();
    return [
      `cache-control: ${headers['cache-control'] ?? '(none)'}; content-security-policy: ${headers['content-security-policy'] ?? '(none)'}`,
      ...(await seriousAxeViolations(stale)),
    ];
  });

  await checks.check('1. back (and reload) in the first tab to the confirmation page: the 409 page, no form; nothing sent again', async () => {
    errorPages.push({ url: confirm, status: 409 });
    const back = await page.goBack();
    expect(page.url() === confirm, 'back went to', page.url());
    expect(back === null || back.status() === 409, 'back: status', back?.status());
    await page.getByRole('heading', { name: 'Already submitted' }).waitFor();
    expect((await page.locator('input[name=__stepup_resume]').count()) === 0, 'the form is shown again');
    await screenshot(page, '1-back');
    const reloaded = await page.reload();
    await expectStatus(reloaded, 409);
    await page.getByRole('heading', { name: 'Already submitted' }).waitFor();
    expect((await balance(page)) === before - 25, 'money moved again');
    await stale.close();
    return [`back: ${back ? `status ${back.status()} from the network` : 'from the page cache'}; reload: 409`];
  });

  // ---- 2. Statements by keyboard only. ------------------------------------

  await checks.check('2. (after logging out and in again) /statements by keyboard only: Tab to the code field, type, Enter', async () => {
    // The assurance of journey 1 belongs to that login: a new one needs a
    // new step-up.
    await page.goto(at('/'));
    const out = next(page, 'POST', '/logout');
    await page.getByRole('button', { name: 'Log out' }).click();
    await expectRedirect(await out, '/');
    await logIn(page);
    const response = await page.goto(at('/statements'));
    expect(isChallenge(response.url()), 'no challenge', response.url());
    await expectStatus(response, 200);
    let tabs = 0;
    let focused = '';
    while (tabs < 15) {
      await page.keyboard.press('Tab');
      tabs += 1;
      focused = await page.evaluate(() => {
        const e = document.activeElement;
        return e ? `${e.tagName.toLowerCase()}${e.id ? `#${e.id}` : ''}` : '';
      });
      if (focused === 'input#totp-code') break;
    }
    expect(focused === 'input#totp-code', `the code field not reached in ${tabs} Tab presses`, focused);
    const { code, waited } = await nextTotp();
    await page.keyboard.type(code, { delay: 20 });
    await screenshot(page, '2-statements-challenge');
    const posted = next(page, 'POST', '/step-up/totp');
    const landed = next(page, 'GET', '/statements');
    await page.keyboard.press('Enter');
    await expectRedirect(await posted, '/statements');
    await expectStatus(await landed, 200);
    await page.getByRole('heading', { name: 'Statements' }).waitFor();
    await screenshot(page, '2-statements');
    return [`${tabs} Tab press(es) to the code field; waited ${waited.toFixed(1)} s for the next TOTP step`];
  });

  // ---- 3. An e-mail code. -------------------------------------------------

  await checks.check('3. "Send me a code by e-mail", the code from the bank log, Enter: 303 to / with a new assurance cookie', async () => {
    await page.goto(at('/step-up?return_to=%2F'));
    const cookie = async () => (await context.cookies(base.origin)).find((c) => c.name === 'stepup')?.value;
    const old = await cookie();
    const count = (await emailCodes()).length;
    const sent = next(page, 'POST', '/step-up/code/send');
    await page.getByRole('button', { name: 'Send me a code by e-mail' }).click();
    await expectStatus(await sent, 200);
    const code = await newEmailCode(count);
    const field = page.getByLabel('The code we sent you');
    await field.waitFor();
    await screenshot(page, '3-email-code');
    await field.fill(code);
    const posted = next(page, 'POST', '/step-up/code/verify');
    await field.press('Enter');
    const response = await posted;
    await expectRedirect(response, '/');
    const set = (await response.headerValue('set-cookie')) ?? '';
    expect(set.startsWith('stepup='), 'no assurance cookie set', set);
    await page.waitForURL(at('/'));
    await page.getByRole('heading', { name: 'Hello, alice' }).waitFor();
    const now = await cookie();
    expect(now && now !== old, 'the assurance cookie did not change');
    await screenshot(page, '3-home');
    return [`code ${code} from the log; set-cookie: ${set.replace(/=[^;]*/, '=…')}`];
  });

  // ---- 3b. Approve on the other device. -----------------------------------

  await checks.check('3b. a wrong number typed on "the phone": nothing approved there, and the waiting page says the request was refused (it stops waiting)', async () => {
    await page.goto(at('/step-up?return_to=%2F'));
    const before = (await approveLinks()).length;
    const started = next(page, 'POST', '/step-up/custom/approve/start');
    await page.getByRole('button', { name: 'Send a request to my other device' }).click();
    await expectStatus(await started, 200);
    const shown = (await page.locator('#approval-number').innerText()).match(/\b(\d{2})\b/);
    expect(shown, 'the waiting page shows a two-digit number');
    const wrong = shown[1] === '42' ? '43' : '42';
    const link = await newApproveLink(before);
    const phone = await launch({});
    browsers.push(phone);
    const other = phone.context.pages()[0] ?? (await phone.context.newPage());
    await other.goto(link);
    await other.getByLabel('The number shown in the browser that asked').fill(wrong);
    const refusing = next(other, 'POST', (u) => pathOf(u) === '/step-up/custom/approve/approve');
    await other.getByRole('button', { name: 'Approve' }).click();
    await expectStatus(await refusing, 403);
    await other.getByText('nothing was approved').waitFor();
    await phone.close();
    await page.getByText('The request was refused on your other device').waitFor();
    await screenshot(page, '3b-refused');
    expect(new URL(page.url()).pathname === '/step-up/custom/approve/start', 'still on the waiting page', page.url());
    return [`typed ${wrong}, shown ${shown[1]}`];
  });

  await checks.check('3c. "Send a request to my other device"; the link from the bank log, opened on "the phone" (another browser), Approve: the waiting page continues by itself to /', async () => {
    await page.goto(at('/step-up?return_to=%2F'));
    const before = (await approveLinks()).length;
    const started = next(page, 'POST', '/step-up/custom/approve/start');
    await page.getByRole('button', { name: 'Send a request to my other device' }).click();
    await expectStatus(await started, 200);
    await page.getByText('We sent a request to your other device').waitFor();
    // Number matching: the waiting page shows the number to type there.
    const shownNumber = (await page.locator('#approval-number').innerText()).match(/\b(\d{2})\b/);
    expect(shownNumber, 'the waiting page shows a two-digit number');
    await screenshot(page, '3c-waiting');
    const link = await newApproveLink(before);
    const phone = await launch({});
    browsers.push(phone);
    const other = phone.context.pages()[0] ?? (await phone.context.newPage());
    // The page polls and continues once approved: no click there.
    const finished = next(page, 'POST', '/step-up/custom/approve/finish');
    await other.goto(link);
    // The phone says where the request came from and asks for the number.
    await other.getByText(/Asked from .* on the network 127\.0\.0\.0\/24/).waitFor();
    await other.getByLabel('The number shown in the browser that asked').fill(shownNumber[1]);
    await screenshot(other, '3c-phone');
    const approving = next(other, 'POST', (u) => pathOf(u) === '/step-up/custom/approve/approve');
    await other.getByRole('button', { name: 'Approve' }).click();
    await expectStatus(await approving, 200);
    await other.getByText('Approved.').waitFor();
    await phone.close();
    await expectRedirect(await finished, '/');
    await page.waitForURL(at('/'));
    await page.getByRole('heading', { name: 'Hello, alice' }).waitFor();
    return [`link ${link.replace(/secret=\w+/, 'secret=…')}`, `number ${shownNumber[1]}`];
  });

  // ---- 4. Every form method with JavaScript off. --------------------------

  let recoveryCodes = [];
  await checks.check('4. recovery codes from the settings page ("New recovery codes", fresh TOTP from journey 2)', async () => {
    await page.goto(at('/settings'));
    const posted = next(page, 'POST', '/step-up/enroll/recovery-codes');
    await page.getByRole('button', { name: 'New recovery codes' }).click();
    await expectStatus(await posted, 200);
    recoveryCodes = (await page.locator('ul.codes code').allTextContents()).map((c) => c.trim());
    expect(recoveryCodes.length >= 1, 'no recovery codes on the page', await page.locator('main').innerText());
    await screenshot(page, '4-recovery-codes');
    return [`${recoveryCodes.length} codes shown, like ${recoveryCodes[0].replace(/[0-9a-z]/gi, 'x')}`];
  });

  let plain;
  let noScript;
  await checks.check('4. JavaScript off: log in as alice (a separate browser)', async () => {
    noScript = await launch({ javaScriptEnabled: false });
    browsers.push(noScript);
    plain = noScript.context.pages()[0] ?? (await noScript.context.newPage());
    watch(plain);
    await logIn(plain);
    await screenshot(plain, '4-nojs-home');
  });

  // One step-up by plain form POST on the challenge page: 303 back to /.
  async function plainStepUp(step, fill, path) {
    const response = await plain.goto(at('/step-up?return_to=%2F'));
    await expectStatus(response, 200);
    await fill();
    await screenshot(plain, `4-nojs-${step}`);
    const posted = next(plain, 'POST', path);
    await plain.keyboard.press('Enter');
    const result = await posted;
    await expectRedirect(result, '/');
    expect(((await result.headerValue('set-cookie')) ?? '').startsWith('stepup='), 'no assurance cookie set');
    await plain.waitForURL(at('/'));
    await plain.getByRole('heading', { name: 'Hello, alice' }).waitFor();
  }

  await checks.check('4. JavaScript off: the password form', async () => {
    await plainStepUp('password', () => plain.getByLabel('Your password').fill('wonderland'), '/step-up/password');
  });

  await checks.check('4. JavaScript off: an e-mail code (send, then verify)', async () => {
    const count = (await emailCodes()).length;
    await plainStepUp(
      'email-code',
      async () => {
        const sent = next(plain, 'POST', '/step-up/code/send');
        await plain.getByRole('button', { name: 'Send me a code by e-mail' }).click();
        await expectStatus(await sent, 200);
        await plain.getByLabel('The code we sent you').fill(await newEmailCode(count));
      },
      '/step-up/code/verify',
    );
  });

  await checks.check('4. JavaScript off: a recovery code', async () => {
    expect(recoveryCodes.length > 0, 'no recovery code to use');
    await plainStepUp('recovery-code', () => plain.getByLabel('One of your recovery codes (each works once)').fill(recoveryCodes[0]), '/step-up/recovery');
  });

  await checks.check('4. JavaScript off: the TOTP form (the next code)', async () => {
    let waited = 0;
    await plainStepUp(
      'totp',
      async () => {
        let code;
        ({ code, waited } = await nextTotp());
        await plain.getByLabel('The 6-digit code from your authenticator app').fill(code);
      },
      '/step-up/totp',
    );
    return [`waited ${waited.toFixed(1)} s for the next TOTP step`];
  });

  if (noScript) {
    browsers.splice(browsers.indexOf(noScript), 1);
    await noScript.close();
  }

  // ---- 5. A big transfer, bound to its amount and payee, by e-mail code. --

  // Over 10,000 a transfer needs a step-up for exactly that amount and payee
  // (PSD2 dynamic linking), used once.
  const confirmationOf = (url) => new URL(url).searchParams.get('confirmation') ?? '';

  // The home page's transfer form, `amount` to bob: 303 to the challenge
  // page of its own confirmation, which says "Confirm: `says`".
  async function bigTransfer(amount, says) {
    await page.goto(at('/'));
    await page.getByRole('heading', { name: 'Hello, alice' }).waitFor();
    await page.getByLabel('To', { exact: true }).fill('bob');
    await page.getByLabel('Amount', { exact: true }).fill(String(amount));
    const posted = next(page, 'POST', '/transfer');
    const shown = next(page, 'GET', isChallenge);
    await page.getByRole('button', { name: 'Send', exact: true }).click();
    await expectStatus(await posted, 303);
    const response = await shown;
    await expectStatus(response, 200);
    const url = response.url();
    const returnTo = new URL(url).searchParams.get('return_to') ?? '';
    expect(/^\/step-up\/resume\?pending=[0-9a-f]{32}$/.test(returnTo), 'the challenge does not return to a kept form', pathOf(url));
    const id = confirmationOf(url);
    expect(/^[0-9a-f]{32}$/.test(id), 'no confirmation id in the challenge URL', pathOf(url));
    const problems = await strictHeaderProblems(response);
    expect(problems.length === 0, 'headers', problems.join('; '));
    const action = page.locator('.action');
    expect((await action.count()) === 1, '.action elements on the challenge page', await action.count());
    const shownText = (await action.textContent()).trim();
    expect(shownText === `Confirm: ${says}`, 'the .action element says', shownText, `want Confirm: ${says}`);
    await page.getByText(`Confirm: ${says}`, { exact: true }).waitFor();
    await page.getByText('This confirmation is for this exact action only.', { exact: true }).waitFor();
    return { response, url, returnTo, id };
  }

  // Every form on the page carries the hidden `confirmation` field `id`.
  async function formsCarry(p, id) {
    const forms = await p.locator('form').evaluateAll((all) =>
      all.map((f) => ({
        action: f.getAttribute('action'),
        confirmation: [...f.querySelectorAll('input[name=confirmation]')].map((i) => `${i.type}:${i.value}`),
      })),
    );
    expect(forms.length > 0, 'no forms on the page');
    const wrong = forms.filter((f) => f.confirmation.length !== 1 || f.confirmation[0] !== `hidden:${id}`);
    expect(wrong.length === 0, `forms on ${pathOf(p.url())} without the hidden confirmation ${id}`, wrong);
    return forms.length;
  }

  let big;
  let beforeBig;
  await checks.check('5. the transfer form (12000 to bob) lands on the challenge page saying "Confirm: Send 12,000 to bob" (.action), every form with the hidden confirmation of its URL', async () => {
    beforeBig = await balance(page);
    big = await bigTransfer(12000, 'Send 12,000 to bob');
    const forms = await formsCarry(page, big.id);
    expect((await balance(page)) === beforeBig, 'money moved before the step-up');
    await screenshot(page, '5-big-challenge');
    return [`POST /transfer → 303 → ${pathOf(big.url)}`, `${forms} form(s), each with confirmation=${big.id}`, ...(await seriousAxeViolations(page))];
  });

  let bigConfirm;
  await checks.check('5. "Send me a code by e-mail": the message in the bank log names "Send 12,000 to bob"; the code (Enter) leads to the confirmation page, a button "Send 12,000 to bob"', async () => {
    const count = (await emailCodes()).length;
    const sent = next(page, 'POST', '/step-up/code/send');
    await page.getByRole('button', { name: 'Send me a code by e-mail' }).click();
    await expectStatus(await sent, 200);
    const code = await newEmailCode(count);
    const log = await readFile(options.log, 'utf8');
    const line = log.split('\n').find((l) => new RegExp(`email code for [^:\\n]*: ${code} `).test(l)) ?? '';
    expect(line.includes('Send 12,000 to bob'), 'the e-mail message does not name the transfer', line);
    const field = page.getByLabel('The code we sent you');
    await field.waitFor();
    await formsCarry(page, big.id);
    await screenshot(page, '5-big-email-code');
    await field.fill(code);
    const posted = next(page, 'POST', '/step-up/code/verify');
    const shown = next(page, 'GET', isConfirm);
    await field.press('Enter');
    await expectRedirect(await posted, big.returnTo);
    const response = await shown;
    await expectStatus(response, 200);
    bigConfirm = response.url();
    expect(pathOf(bigConfirm) === big.returnTo, 'confirmation page', pathOf(bigConfirm));
    const problems = await strictHeaderProblems(response);
    expect(problems.length === 0, 'headers', problems.join('; '));
    await page.getByRole('button', { name: 'Send 12,000 to bob', exact: true }).waitFor();
    expect((await balance(page)) === beforeBig, 'the step-up moved money');
    await screenshot(page, '5-big-confirm');
    return [`the log: …${line.slice(line.indexOf('email code for'))}`, `confirmation page: ${pathOf(bigConfirm)}`, ...(await seriousAxeViolations(page))];
  });

  await checks.check('5. the button sends it once: home page, balance down by exactly 12,000', async () => {
    const posted = next(page, 'POST', '/transfer');
    await page.getByRole('button', { name: 'Send 12,000 to bob', exact: true }).click();
    await expectRedirect(await posted, '/');
    await page.waitForURL(at('/'));
    await page.getByRole('heading', { name: 'Hello, alice' }).waitFor();
    const after = await balance(page);
    expect(after === beforeBig - 12000, 'balance', { before: beforeBig, after });
    await screenshot(page, '5-big-sent');
    return [`balance ${beforeBig} → ${after}`];
  });

  await checks.check('5. back (and reload) to the confirmation page: the 409 page; nothing sent again', async () => {
    errorPages.push({ url: bigConfirm, status: 409 });
    const back = await page.goBack();
    expect(page.url() === bigConfirm, 'back went to', page.url());
    expect(back === null || back.status() === 409, 'back: status', back?.status());
    await page.getByRole('heading', { name: 'Already submitted' }).waitFor();
    expect((await page.locator('input[name=__stepup_resume]').count()) === 0, 'the form is shown again');
    await screenshot(page, '5-big-back');
    const reloaded = await page.reload();
    await expectStatus(reloaded, 409);
    await page.getByRole('heading', { name: 'Already submitted' }).waitFor();
    expect((await balance(page)) === beforeBig - 12000, 'money moved again');
    return [`back: ${back ? `status ${back.status()} from the network` : 'from the page cache'}; reload: 409`];
  });

  await checks.check('5. then 12001 to bob asks for its own confirmation: "Confirm: Send 12,001 to bob", another confirmation id', async () => {
    const other = await bigTransfer(12001, 'Send 12,001 to bob');
    expect(other.id !== big.id, 'the same confirmation id again', other.id);
    expect(other.returnTo !== big.returnTo, 'the same kept form again', other.returnTo);
    const forms = await formsCarry(page, other.id);
    expect((await balance(page)) === beforeBig - 12000, 'money moved without a confirmation');
    await screenshot(page, '5-bigger-challenge');
    return [`${pathOf(other.url)}; ${forms} form(s) with confirmation=${other.id}`];
  });

  // ---- 6. A passkey closes the account (last: the account is gone). -------

  let authenticatorId;
  let cdp;
  await checks.check('6. enroll a passkey on /step-up/enroll/passkey (virtual authenticator, fresh TOTP from journey 2)', async () => {
    cdp = await cdpOf(page);
    await cdp.send('WebAuthn.enable', { enableUI: false });
    ({ authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: {
        protocol: 'ctap2',
        transport: 'internal',
        hasResidentKey: true,
        hasUserVerification: true,
        isUserVerified: true,
        automaticPresenceSimulation: true,
      },
    }));
    const response = await page.goto(at('/step-up/enroll/passkey'));
    expect(response.url() === at('/step-up/enroll/passkey'), 'redirected: the TOTP step-up was not enough', response.url());
    await page.locator('#passkey-button').waitFor({ state: 'visible' });
    await screenshot(page, '6-enroll-passkey');
    const finish = next(page, 'POST', '/step-up/enroll/passkey/finish');
    const enroll = page.url();
    await page.locator('#passkey-button').click();
    await expectStatus(await finish, 200);
    await page.waitForURL((url) => url.href !== enroll);
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    expect(credentials.length === 1, 'authenticator credentials', credentials);
    return [`registered; the script went on to ${pathOf(page.url())}`];
  });

  await checks.check('6. "Close my account" on /settings: the challenge page says "Continue: Close your account" and offers a passkey', async () => {
    await page.goto(at('/settings'));
    const posted = next(page, 'POST', '/settings/close-account');
    const shown = next(page, 'GET', isChallenge);
    await page.getByRole('button', { name: 'Close my account' }).click();
    await expectStatus(await posted, 303);
    const response = await shown;
    await expectStatus(response, 200);
    challenge = response.url();
    const returnTo = new URL(challenge).searchParams.get('return_to') ?? '';
    expect(/^\/step-up\/resume\?pending=[0-9a-f]{32}$/.test(returnTo), 'the challenge does not return to a kept form', pathOf(challenge));
    const problems = await strictHeaderProblems(response);
    expect(problems.length === 0, 'headers', problems.join('; '));
    await page.getByText('Continue: Close your account', { exact: true }).waitFor();
    await page.getByRole('button', { name: 'Use a passkey' }).waitFor({ state: 'visible' });
    const forms = await page.locator('form').count();
    await screenshot(page, '6-close-challenge');
    return [`${pathOf(challenge)}; other forms on the page: ${forms}`, ...(await seriousAxeViolations(page))];
  });

  await checks.check('6. a passkey without user verification: a readable error in #passkey-error, still on the challenge page', async () => {
    await cdp.send('WebAuthn.setUserVerified', { authenticatorId, isUserVerified: false });
    const asked = [];
    const onResponse = (r) => {
      if (r.url().startsWith(at('/step-up/passkey/'))) asked.push(`${pathOf(r.url())} ${r.status()}`);
    };
    page.on('response', onResponse);
    await page.getByRole('button', { name: 'Use a passkey' }).click();
    const box = page.locator('#passkey-error');
    await box.waitFor({ state: 'visible' });
    page.off('response', onResponse);
    const text = (await box.innerText()).trim();
    expect(text.length > 0, 'the error is empty');
    expect(!/^[[{"]/.test(text) && !text.includes('":'), 'the error is JSON', text);
    expect(page.url() === challenge, 'left the challenge page', page.url());
    await screenshot(page, '6-passkey-refused');
    return [`#passkey-error: ${text}`, `requests: ${asked.join(', ') || '(none)'}`];
  });

  await checks.check('6. with user verification: the confirmation page "Close your account", then "Account closed"', async () => {
    await cdp.send('WebAuthn.setUserVerified', { authenticatorId, isUserVerified: true });
    const finish = next(page, 'POST', '/step-up/passkey/finish');
    const shown = next(page, 'GET', isConfirm);
    await page.getByRole('button', { name: 'Use a passkey' }).click();
    await expectStatus(await finish, 200);
    const response = await shown;
    await expectStatus(response, 200);
    expect(pathOf(response.url()) === new URL(challenge).searchParams.get('return_to'), 'not the kept form', pathOf(response.url()));
    const button = page.getByRole('button', { name: 'Close your account', exact: true });
    await button.waitFor();
    await screenshot(page, '6-close-confirm');
    const details = await seriousAxeViolations(page);
    const posted = next(page, 'POST', '/settings/close-account');
    await button.click();
    await expectStatus(await posted, 200);
    await page.getByRole('heading', { name: 'Account closed' }).waitFor();
    await screenshot(page, '6-closed');
    // "…and you are logged out": this browser's login is gone.
    const account = await page.request.get(at('/account'));
    expect(account.status() === 401, 'GET /account after closing', account.status());
    return details;
  });

  await checks.check(
    'no CSP violation and no console error on the bank and stepup pages across the journeys',
    async () => {
      for (const p of context.pages()) await p.evaluate(() => true).catch(() => {});
      const found = violations.filter((v) => ours(v.documentURI));
      // The demo bank serves no favicon: Chromium's own request for it 404s
      // and logs that; and it logs the status of the 409 pages the journeys
      // asked for. Neither is a page's doing; anything else counts.
      const favicon = (e) => e.url === at('/favicon.ico') && e.text.includes('404');
      const meant = (e) => errorPages.some((p) => e.url === p.url && e.text.includes(`status of ${p.status}`));
      const all = errors.flat();
      const logged = all.filter((e) => !favicon(e) && !meant(e));
      expect(found.length === 0, 'CSP violations', found);
      expect(logged.length === 0, 'console errors', logged);
      return [
        `${all.filter(favicon).length} favicon 404(s), ${all.filter(meant).length} "status of 409" line(s) of the 409 pages ignored`,
        'with JavaScript off no page reports violation events: there its console (where Chromium logs them too) is what counts',
      ];
    },
    { always: true },
  );
}

// ---------------------------------------------------------------------------

const started = performance.now();
try {
  await run();
} catch (error) {
  checks.fail('the run itself (outside any check)', error);
} finally {
  clearTimeout(deadline);
  await closeAll();
}
for (const path of screenshots) console.log(`screenshot: ${path}`);
console.log(`# ${label} journeys: ${((performance.now() - started) / 1000).toFixed(1)} s`);
if (options.results) await checks.save(options.results);
process.exitCode = checks.failed === 0 ? 0 : 1;
