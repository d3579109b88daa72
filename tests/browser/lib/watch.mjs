// Records what a page must not produce: Content-Security-Policy violations
// (the `securitypolicyviolation` event, from an init script in every
// document and frame) and console errors / uncaught exceptions.
//
// The init script and the binding it calls are installed through the
// DevTools protocol, which the page's CSP does not govern: the recorder works
// under `script-src 'self'` without weakening it (no `bypassCSP`).

/** Installs the violation recorder on every page of `context`. */
export async function recordViolations(context) {
  const violations = [];
  await context.exposeBinding('__stepupViolation', (source, v) => {
    violations.push({ ...v, frame: source.frame.url() });
  });
  await context.addInitScript(() => {
    document.addEventListener(
      'securitypolicyviolation',
      (e) => {
        window.__stepupViolation({
          directive: e.effectiveDirective,
          blockedURI: e.blockedURI,
          documentURI: e.documentURI,
          sourceFile: e.sourceFile,
          line: e.lineNumber,
          disposition: e.disposition,
        });
      },
      true,
    );
  });
  return violations;
}

/** Records console errors and uncaught exceptions of `page`. */
export function recordErrors(page) {
  const errors = [];
  page.on('console', (message) => {
    if (message.type() === 'error') {
      errors.push({ text: message.text(), url: message.location()?.url ?? page.url() });
    }
  });
  page.on('pageerror', (error) => errors.push({ text: `uncaught: ${error.message}`, url: page.url() }));
  return errors;
}
