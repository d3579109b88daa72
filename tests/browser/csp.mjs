// The challenge pages and passkey.js under the strict Content-Security-Policy
// of the challenge routes, in real Chromium, against a running demo bank.
//
//   BANK_DEMO_TOTP_SECRET=GEZD… node tests/browser/csp.mjs \
//       --url http://localhost:PORT/ [--name axum-bank] [--artifacts DIR] [--results FILE]
//
// The bank must be fresh (scripts/browser starts one per binary, each on a
// new data directory): Alice has her TOTP secret, no passkey, and no TOTP
// code used yet. Screenshots go to
// DIR (default target/browser/); FILE gets {passed, failed, checks} as JSON.
// Exit status 0 when every check passed.
import { mkdir, readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { launch } from './lib/chromium.mjs';
import { Checks, eventually, expect } from './lib/harness.mjs';
import { strictHeaderProblems } from './lib/headers.mjs';
import { totp } from './lib/totp.mjs';
import { recordErrors, recordViolations } from './lib/watch.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const { values: options } = parseArgs({
  options: {
    url: { type: 'string', default: process.env.BANK_URL },
    name: { type: 'string' },
    artifacts: { type: 'string' },
    results: { type: 'string' },
    deadline: { type: 'string', default: '90' },
  },
});
if (!options.url || !process.env.BANK_DEMO_TOTP_SECRET) {
  console.error('usage: BANK_DEMO_TOTP_SECRET=… node csp.mjs --url http://localhost:PORT/ [--name N]');
  process.exit(2);
}
const base = new URL(options.url);
// Passkeys (relying party `localhost`) and the challenge routes' origin
// check need exactly the origin the bank printed.
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

// A test-only image from another origin: the page's CSP must block it and
// the recorder must see that, or "no violations" would prove nothing.
const CANARY = 'https://canary.invalid/stepup-browser-canary.png';
const isCanary = (text) => String(text).includes('canary.invalid');

const checks = new Checks(label);
const screenshots = [];
const browser = await launch();
const deadline = setTimeout(async () => {
  // From here on the run fails fast and its results are ignored; should
  // something still hang, the process ends anyway (report saved first).
  checks.halt('deadline', `still running after ${options.deadline} s`);
  if (options.results) await checks.save(options.results);
  setTimeout(() => process.exit(1), 5000).unref();
  await browser.close();
}, Number(options.deadline) * 1000);

try {
  await run();
} catch (error) {
  checks.fail('the run itself (outside any check)', error);
} finally {
  clearTimeout(deadline);
  await browser.close();
}
for (const path of screenshots) console.log(`screenshot: ${path}`);
if (options.results) await checks.save(options.results);
process.exitCode = checks.failed === 0 ? 0 : 1;

async function run() {
  const { context } = browser;
  const violations = await recordViolations(context);
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(10_000);
  const errors = recordErrors(page);
  const cdp = await context.newCDPSession(page);
  const axeSource = await readFile(join(here, 'node_modules/axe-core/axe.min.js'), 'utf8');

  async function screenshot(page, name) {
    const path = join(artifacts, `${label}-${name}.png`);
    await page.screenshot({ path, fullPage: true });
    screenshots.push(path);
  }

  // axe.min.js goes in through the DevTools protocol: a <script> tag would
  // be (rightly) refused by the page's CSP, and `bypassCSP` would void the
  // whole test.
  async function seriousAxeViolations() {
    const { exceptionDetails } = await cdp.send('Runtime.evaluate', { expression: axeSource });
    expect(!exceptionDetails, 'axe.min.js did not load', exceptionDetails?.text ?? '');
    const found = await page.evaluate(() =>
      window.axe.run(document, { resultTypes: ['violations'] }).then((r) =>
        r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')) })),
      ),
    );
    const serious = found.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    expect(serious.length === 0, 'axe: serious or critical violations', serious);
    return found.length === 0 ? ['axe: no violations'] : found.map((v) => `axe (${v.impact}, allowed): ${v.id}: ${v.help}`);
  }

  // A response the page is about to get. Handled at once, so one left
  // waiting when a check fails early cannot crash the run later.
  function next(page, url) {
    const waiting = page.waitForResponse((r) => r.url() === url);
    waiting.catch(() => {});
    return waiting;
  }

  // Reads the body (and what the browser sent) only on failure: passkey.js
  // navigates on success, and a response navigated away from has no body.
  async function expectStatus(response, status) {
    if (response.status() !== status) {
      const body = await response.text().catch(() => '(body gone)');
      const sent = await response.request().allHeaders();
      const fetchHeaders = `sent Origin: ${sent.origin ?? '(none)'}, Sec-Fetch-Site: ${sent['sec-fetch-site'] ?? '(none)'}`;
      expect(false, `${pathOf(response.url())}: status ${response.status()}, want ${status}`, fetchHeaders, body);
    }
  }

  await checks.check('log in as alice through the form on /', async () => {
    await page.goto(at('/'));
    await page.getByLabel('User', { exact: true }).fill('alice');
    await page.getByLabel('Password', { exact: true }).fill('wonderland');
    const login = next(page, at('/login'));
    await page.getByRole('button', { name: 'Log in' }).click();
    await expectStatus(await login, 303);
    await page.getByRole('heading', { name: 'Hello, alice' }).waitFor();
  });

  let challenge;
  await checks.check('GET /statements is a 303 to the challenge page, which carries the strict CSP, XFO DENY, no-referrer', async () => {
    const response = await page.goto(at('/statements'));
    const first = response.request().redirectedFrom();
    expect(first && first.url() === at('/statements'), 'no redirect from /statements', response.url());
    expect((await first.response()).status() === 303, 'the redirect is not a 303', (await first.response()).status());
    expect(new URL(response.url()).pathname === '/step-up', 'not the challenge page', response.url());
    expect(response.status() === 200, 'challenge page status', response.status());
    expect((await response.headerValue('content-type'))?.startsWith('text/html'), 'not HTML');
    const problems = await strictHeaderProblems(response);
    expect(problems.length === 0, 'headers', problems.join('; '));
    await page.getByRole('heading', { name: 'Authenticator app' }).waitFor();
    challenge = response.url();
    return [`/statements → 303 → ${pathOf(challenge)}`, `content-security-policy: ${await response.headerValue('content-security-policy')}`];
  });

  await checks.check("page.css is applied on the challenge page (style-src 'self')", async () => {
    const style = await page.evaluate(() => {
      const css = (selector, property) => getComputedStyle(document.querySelector(selector)).getPropertyValue(property);
      return {
        sheets: [...document.styleSheets].map((s) => s.href),
        bodyMargin: css('body', 'margin-top'),
        bodyFont: css('body', 'font-family'),
        mainMaxWidth: css('main', 'max-width'),
        buttonBackground: css('button[type=submit]', 'background-color'),
        buttonRadius: css('button[type=submit]', 'border-top-left-radius'),
      };
    });
    expect(style.sheets.length === 1 && style.sheets[0] === at('/step-up/assets/page.css'), 'stylesheets', style.sheets);
    // Each differs from Chromium's defaults (8px, Times, none, buttonface, 0px).
    expect(style.bodyMargin === '0px', 'body margin (page.css: 0)', style);
    expect(style.bodyFont.includes('system-ui'), 'body font (page.css: system-ui)', style);
    expect(style.mainMaxWidth === '448px', 'main max-width (page.css: 28rem)', style);
    expect(style.buttonBackground === 'rgb(11, 87, 208)', 'button background (page.css: --accent #0b57d0)', style);
    expect(style.buttonRadius === '4px', 'button radius (page.css: .25rem)', style);
    return [`computed: ${JSON.stringify({ ...style, sheets: undefined })}`];
  });

  await checks.check('the CSP recorder works under this CSP (a test-only cross-origin image is blocked and reported)', async () => {
    await page.evaluate((src) => {
      new Image().src = src;
    }, CANARY);
    const seen = await eventually(() => violations.find((v) => isCanary(v.blockedURI)));
    expect(seen, 'no securitypolicyviolation recorded for the canary: the recorder is broken', violations);
    expect(seen.directive === 'img-src', 'canary blocked by another directive', seen);
    return [`canary: ${seen.directive} blocked ${seen.blockedURI}`];
  });

  await checks.check('axe-core: no serious or critical violations on the challenge page', async () => {
    await screenshot(page, 'challenge');
    return seriousAxeViolations();
  });

  await checks.check("a challenge page in an iframe of another origin is blocked by frame-ancestors 'none' (a control frame loads)", async () => {
    // Same site, other origin (port), so the Lax session cookie goes along
    // and the bank answers the real challenge page, not a 401.
    const target = at('/step-up?return_to=%2Fstatements');
    const control = at('/');
    const html =
      '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>framer</title></head><body>' +
      '<h1>Another origin framing the bank</h1>' +
      `<p>control: ${control}</p><iframe id="control" src="${control}" width="700" height="300"></iframe>` +
      `<p>challenge page: ${target}</p><iframe id="target" src="${target}" width="700" height="300"></iframe>` +
      '</body></html>';
    const server = createServer((request, response) => {
      response.writeHead(request.url === '/' ? 200 : 204, { 'content-type': 'text/html; charset=utf-8' });
      response.end(request.url === '/' ? html : '');
    });
    await new Promise((ready) => server.listen(0, '127.0.0.1', ready));
    const framer = `http://localhost:${server.address().port}/`;
    const other = await context.newPage();
    other.setDefaultTimeout(10_000);
    const messages = [];
    other.on('console', (m) => messages.push(m.text()));
    let targetResponse;
    other.on('response', (r) => {
      if (r.url() === target) targetResponse = r;
    });
    try {
      await other.goto(framer, { waitUntil: 'load' });
      const controlFrame = await (await other.$('#control')).contentFrame();
      await controlFrame.getByRole('heading', { name: 'Hello, alice' }).waitFor();
      // The browser did get the challenge page: blocked by its headers,
      // not by a failed request or a 401.
      expect(targetResponse, 'the framed challenge page was never requested');
      expect(targetResponse.status() === 200, 'framed challenge page status', targetResponse.status());
      const problems = await strictHeaderProblems(targetResponse);
      expect(problems.length === 0, 'framed response headers', problems.join('; '));
      // Chromium swaps a frame refused by frame-ancestors for its error page
      // and says why on the console of the framing page ("Framing '…'
      // violates … \"frame-ancestors 'none'\". The request has been blocked.";
      // older versions: "Refused to frame '…' because an ancestor violates …").
      const refused = await eventually(() =>
        messages.find((m) => m.includes(base.origin) && m.includes("frame-ancestors 'none'")),
      );
      expect(refused, "no frame-ancestors 'none' refusal on the console", messages);
      const targetFrame = await (await other.$('#target')).contentFrame();
      expect(targetFrame.url() !== target, 'the challenge page committed inside the frame', targetFrame.url());
      const inside = await targetFrame.evaluate(() => document.querySelector('#totp-code') !== null).catch(() => false);
      expect(!inside, 'the challenge form is inside the frame');
      await screenshot(other, 'framed');
      return [`control frame: ${pathOf(controlFrame.url())} rendered; challenge frame: ${targetFrame.url()}`, `console: ${refused.trim()}`];
    } finally {
      server.close();
      await other.close().catch(() => {});
    }
  });

  await checks.check('typing the TOTP code into the challenge form (keyboard) returns to /statements', async () => {
    if (page.url() !== challenge) await page.goto(challenge);
    await page.getByLabel('The 6-digit code from your authenticator app').click();
    await page.keyboard.type(totp(secret), { delay: 20 });
    const posted = next(page, at('/step-up/totp'));
    const landed = next(page, at('/statements'));
    await page.keyboard.press('Enter');
    await expectStatus(await posted, 303);
    await expectStatus(await landed, 200);
    await page.getByRole('heading', { name: 'Statements' }).waitFor();
    expect(page.url() === at('/statements'), 'ended at', page.url());
    // Reported, not checked: what the page's referrer policy lets the form
    // send (a <meta name="referrer"> overrides the Referrer-Policy header;
    // under no-referrer a POST's Origin is "null").
    const sent = await (await posted).request().allHeaders();
    return [`the form POST sent Origin: ${sent.origin ?? '(none)'}, Referer: ${sent.referer ?? '(none)'}`];
  });

  let authenticatorId;
  await checks.check('the passkey enrollment page (TOTP fresh) has the strict headers, and passkey.js runs: its button shows', async () => {
    // A platform authenticator that verifies the user (the WebAuthn domain
    // of the DevTools protocol): what a passkey on a phone or laptop is.
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
    expect(response.status() === 200, 'enrollment page status', response.status());
    const problems = await strictHeaderProblems(response);
    expect(problems.length === 0, 'headers', problems.join('; '));
    // The button is `hidden` in the HTML; only passkey.js shows it.
    await page.locator('#passkey-button').waitFor({ state: 'visible' });
    await screenshot(page, 'enroll-passkey');
  });

  await checks.check('axe-core: no serious or critical violations on the enrollment page', seriousAxeViolations);

  await checks.check("the button registers a passkey with a virtual authenticator (fetch under connect-src 'self')", async () => {
    const enroll = page.url();
    const start = next(page, at('/step-up/enroll/passkey/start'));
    const finish = next(page, at('/step-up/enroll/passkey/finish'));
    await page.locator('#passkey-button').click();
    await expectStatus(await start, 200);
    await expectStatus(await finish, 200);
    // On a 2xx answer passkey.js goes on to the answer's `return_to`; on
    // anything else it shows an error and stays.
    await page.waitForURL((url) => url.href !== enroll);
    expect(page.url().startsWith(base.origin), 'left the bank', page.url());
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    expect(credentials.length === 1 && credentials[0].rpId === 'localhost', 'authenticator credentials', credentials);
    return [`registered (rpId ${credentials[0].rpId}); the script went on to ${pathOf(page.url())}`];
  });

  await checks.check('with a passkey, the challenge page offers it and passkey.js signs in with it', async () => {
    const response = await page.goto(at('/step-up?return_to=%2Fstatements'));
    const problems = await strictHeaderProblems(response);
    expect(problems.length === 0, 'headers', problems.join('; '));
    const button = page.getByRole('button', { name: 'Use a passkey' });
    await button.waitFor({ state: 'visible' });
    await screenshot(page, 'challenge-passkey');
    const finish = next(page, at('/step-up/passkey/finish'));
    await button.click();
    await expectStatus(await finish, 200);
    await page.waitForURL(at('/statements'));
    await page.getByRole('heading', { name: 'Statements' }).waitFor();
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    expect(credentials[0]?.signCount > 0, 'the passkey was not used', credentials);
  });

  await checks.check(
    'no CSP violation and no console error on the bank and stepup pages',
    async () => {
      // A round trip to the page first: console events sent before it are in.
      await page.evaluate(() => true).catch(() => {});
      const ours = (url) => String(url).startsWith(base.origin);
      const found = violations.filter((v) => !isCanary(v.blockedURI) && ours(v.documentURI));
      // The demo bank serves no favicon: Chromium's own request for it 404s
      // and logs that. Not a page's doing; anything else counts.
      const favicon = (e) => e.url === at('/favicon.ico') && e.text.includes('404');
      const logged = errors.filter((e) => !isCanary(e.text) && !favicon(e));
      expect(found.length === 0, 'CSP violations', found);
      expect(logged.length === 0, 'console errors', logged);
      const elsewhere = violations.filter((v) => !isCanary(v.blockedURI) && !ours(v.documentURI));
      return [
        `${violations.length - found.length - elsewhere.length} canary violation(s), ${errors.filter(favicon).length} favicon 404(s) ignored`,
        ...elsewhere.map((v) => `(other origin, not counted) ${v.directive} ${v.blockedURI} on ${v.documentURI}`),
      ];
    },
    { always: true },
  );
}
