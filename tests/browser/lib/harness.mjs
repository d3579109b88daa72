// A minimal sequential check runner for the browser tests. Checks of one
// flow run in order; after a failure the later ones are reported as not
// run (and counted as failures) unless marked `always`, so one broken step
// does not cascade into a series of timeouts. `fail` records a failure
// outside any check (a crash); `halt` (a deadline) records one and ignores
// whatever the run still does.
import { writeFile } from 'node:fs/promises';

export class Checks {
  constructor(label) {
    this.label = label;
    this.results = [];
    this.broken = null;
    this.halted = false;
  }

  fail(name, error) {
    if (this.halted) return;
    this.broken ??= this.results.length + 1;
    this.results.push({ name, ok: false, error: String(error?.stack ?? error) });
    console.log(`not ok ${this.results.length} - ${this.label}: ${name}`);
    for (const line of String(error?.stack ?? error).split('\n').slice(0, 12)) console.log(`    ${line}`);
  }

  halt(name, error) {
    this.fail(name, error);
    this.halted = true;
  }

  async check(name, fn, { always = false } = {}) {
    if (this.halted) return;
    const n = this.results.length + 1;
    const title = `${this.label}: ${name}`;
    if (this.broken && !always) {
      this.results.push({ name, ok: false, error: `not run: check ${this.broken} failed` });
      console.log(`not ok ${n} - ${title} # not run: check ${this.broken} failed`);
      return;
    }
    const started = performance.now();
    try {
      const details = await fn();
      if (this.halted) return;
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      this.results.push({ name, ok: true });
      console.log(`ok ${n} - ${title} (${seconds} s)`);
      for (const line of [details ?? []].flat()) console.log(`    ${line}`);
    } catch (error) {
      this.fail(name, error);
    }
  }

  get passed() {
    return this.results.filter((r) => r.ok).length;
  }

  get failed() {
    return this.results.length - this.passed;
  }

  /** Writes `{passed, failed, checks}` for scripts/browser to add up. */
  async save(path) {
    const body = { label: this.label, passed: this.passed, failed: this.failed, checks: this.results };
    await writeFile(path, `${JSON.stringify(body, null, 2)}\n`);
  }
}

/** Throws `message` (with the values) unless `condition`. */
export function expect(condition, message, ...values) {
  if (!condition) {
    const shown = values.map((v) => (typeof v === 'string' ? v : JSON.stringify(v)));
    throw new Error([message, ...shown].join(' — '));
  }
}

/** Polls `probe` until it returns something truthy (or `timeout` ms pass). */
export async function eventually(probe, { timeout = 5000, interval = 50 } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}

/**
 * Ends a run on time: after `seconds`, `checks` is halted (later results
 * are ignored), its report saved to `results` and `close()` called; the
 * process exits 5 s later should something still hang. Returns the timer
 * (`clearTimeout` it when the run ends).
 */
export function armDeadline(checks, seconds, results, close) {
  return setTimeout(async () => {
    checks.halt('deadline', `still running after ${seconds} s`);
    if (results) await checks.save(results);
    setTimeout(() => process.exit(1), 5000).unref();
    await close();
  }, Number(seconds) * 1000);
}

/**
 * Runs `run` to its end (a crash is a failure outside any check), then
 * clears `deadline`, calls `close()`, prints how long `what` took, saves
 * the report to `results` and sets the exit status.
 */
export async function runToEnd(checks, run, { deadline, close, what, results }) {
  const started = performance.now();
  try {
    await run();
  } catch (error) {
    checks.fail('the run itself (outside any check)', error);
  } finally {
    clearTimeout(deadline);
    await close();
  }
  console.log(`# ${what}: ${((performance.now() - started) / 1000).toFixed(1)} s`);
  if (results) await checks.save(results);
  process.exitCode = checks.failed === 0 ? 0 : 1;
}

/**
 * Throws unless a page produced no CSP violation and no console error;
 * Chromium's own 404 for `favicon` (the apps serve none) is not a page's
 * doing.
 */
export function expectCleanPages(violations, errors, favicon) {
  const logged = errors.filter((e) => !(e.url === favicon && e.text.includes('404')));
  expect(violations.length === 0, 'CSP violations', violations);
  expect(logged.length === 0, 'console errors', logged);
}
