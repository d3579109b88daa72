// The security headers every stepup page carries, and how to compare them.

/** What the challenge routes send (stepup_challenge::routes::CONTENT_SECURITY_POLICY). */
export const STRICT_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
  "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/** `directive -> sorted sources` of a policy, to compare regardless of order. */
export function parseCsp(policy) {
  const directives = {};
  for (const part of policy.split(';')) {
    const [name, ...sources] = part.trim().split(/\s+/);
    if (!name) continue;
    directives[name.toLowerCase()] = sources.sort().join(' ');
  }
  return directives;
}

/**
 * The headers of a stepup HTML `response` (Playwright): one CSP equal to
 * STRICT_CSP, `X-Frame-Options: DENY`, `Referrer-Policy: no-referrer`,
 * `nosniff`, `no-store`. Returns a list of problems (empty when all hold).
 */
export async function strictHeaderProblems(response) {
  const problems = [];
  const csp = await response.headerValues('content-security-policy');
  if (csp.length !== 1) {
    problems.push(`expected one Content-Security-Policy header, got ${csp.length}`);
  } else if (JSON.stringify(parseCsp(csp[0])) !== JSON.stringify(parseCsp(STRICT_CSP))) {
    problems.push(`Content-Security-Policy is ${JSON.stringify(csp[0])}`);
  }
  const want = {
    'x-frame-options': 'DENY',
    'referrer-policy': 'no-referrer',
    'x-content-type-options': 'nosniff',
    'cache-control': 'no-store',
  };
  for (const [name, value] of Object.entries(want)) {
    const got = await response.headerValue(name);
    if (got?.toLowerCase() !== value.toLowerCase()) problems.push(`${name} is ${JSON.stringify(got)}, want ${value}`);
  }
  return problems;
}
