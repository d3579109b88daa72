// The stepup-oidc tests' OpenID Provider: oidc-provider (OpenID Certified)
// on a free 127.0.0.1 port, with acr values, the claims parameter, released
// amr, PKCE required, pushed authorization requests, RFC 9207's `iss` — and
// an interaction handler that completes every login as the test scripted it
// (by default "alice, the acr asked for, otp+pwd, just now").
//
//   REDIRECT_URI=http://127.0.0.1:9/callback node provider.mjs
//   REDIRECT_URIS="http://a/login/cb http://a/step-up/cb" node provider.mjs
//
// prints `READY <issuer>` once it listens. Test control (with TEST_CONTROL=1):
//   POST /__test/next-login {"accountId", "acr", "amr", "ageSecs",
//        "refuse", "nonce", "acrs"}  — for the following logins; `null` resets a
//        field ("acr": the highest asked for; "amr": null releases none).
import http from 'node:http';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import Provider from 'oidc-provider';

const ACRS = ['urn:stepup:loa:1', 'urn:stepup:loa:2', 'urn:stepup:loa:3'];
const DEFAULTS = { accountId: 'alice', acr: null, amr: ['pwd', 'otp'], ageSecs: 0, refuse: false, nonce: null, acrs: null };
let next = { ...DEFAULTS };

const redirectUris = (process.env.REDIRECT_URIS ?? process.env.REDIRECT_URI ?? '').split(' ').filter(Boolean);
if (!redirectUris.length) {
  console.error('set REDIRECT_URI (or REDIRECT_URIS, space-separated)');
  process.exit(2);
}

// Started by a program that may be killed without stopping it
// (examples/oidc-app): gone when that program's end of stdin closes.
if (process.env.EXIT_WITH_STDIN) {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
}

const server = http.createServer();
await new Promise((resolve) => server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;
const key = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'stepup-test',
      client_secret: 'stepup-test-secret',
      redirect_uris: redirectUris,
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['authorization_code'],
      response_types: ['code'],
    },
  ],
  // A new key (and key id) at every start: a restart is a key rotation.
  jwks: { keys: [{ ...key, kid: `test-${randomUUID()}`, use: 'sig', alg: 'RS256' }] },
  cookies: { keys: ['stepup-oidc-tests-only'] },
  acrValues: ACRS,
  // `acrs`: Entra ID's authentication contexts (scripted by the tests).
  claims: { amr: null, acrs: null },
  features: {
    devInteractions: { enabled: false },
    claimsParameter: { enabled: true },
    pushedAuthorizationRequests: { enabled: true },
  },
  pkce: { required: () => true },
  findAccount: async (ctx, sub) => ({
    accountId: sub,
    claims: async () => (next.acrs ? { sub, acrs: next.acrs } : { sub }),
  }),
  // A first-party client: no consent screen.
  async loadExistingGrant(ctx) {
    const id = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (id) {
      return ctx.oidc.provider.Grant.find(id);
    }
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope('openid');
    grant.addOIDCClaims(['acrs']);
    await grant.save();
    return grant;
  },
});

// The acr values a request asks for: `acr_values` and the claims
// parameter's `acr` (value or values).
function asked(params) {
  const out = (params.acr_values ?? '').split(' ').filter(Boolean);
  try {
    const acr = JSON.parse(params.claims ?? '{}')?.id_token?.acr;
    if (acr?.value) out.push(acr.value);
    for (const value of acr?.values ?? []) out.push(value);
  } catch {
    // not JSON: nothing asked
  }
  return out.filter((a) => ACRS.includes(a));
}

provider.use(async (ctx, nextMiddleware) => {
  // The tests' control: only when the harness asks for it (TEST_CONTROL=1;
  // never in `cargo run -p oidc-app`), and only as JSON (a page on
  // another site cannot send that without a preflight this never answers).
  if (ctx.method === 'POST' && ctx.path === '/__test/next-login'
      && process.env.TEST_CONTROL === '1' && ctx.get('content-type') === 'application/json') {
    let raw = '';
    for await (const chunk of ctx.req) raw += chunk;
    const change = JSON.parse(raw || '{}');
    for (const [field, value] of Object.entries(change)) {
      next[field] = value === null && field !== 'amr' ? DEFAULTS[field] : value;
    }
    ctx.status = 204;
    return;
  }
  // A scripted nonce (an ID token minted for another request's nonce).
  if (ctx.method === 'GET' && ctx.path === '/auth' && next.nonce) {
    ctx.query = { ...ctx.query, nonce: next.nonce };
  }
  if (!/^\/interaction\/[^/]+$/.test(ctx.path)) {
    return nextMiddleware();
  }
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  const { prompt, params, lastSubmission } = details;
  // Asked again after a login: the scripted login did not satisfy an
  // essential request; refuse rather than loop.
  const again = Boolean(lastSubmission?.login);
  let result;
  if (next.refuse || again) {
    result = { error: 'access_denied', error_description: 'refused by the test script' };
  } else if (prompt.name === 'login') {
    const acrs = asked(params);
    // The least that satisfies the request, as a provider would.
    const acr = next.acr ?? (acrs.length ? acrs.sort()[0] : ACRS[0]);
    const login = {
      accountId: next.accountId,
      acr,
      ts: Math.floor(Date.now() / 1000) - Number(next.ageSecs || 0),
      remember: true,
    };
    if (next.amr) login.amr = next.amr;
    result = { login };
  } else {
    result = { consent: {} };
  }
  const to = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
  ctx.status = 303;
  ctx.redirect(to);
});

server.on('request', provider.callback());
console.log(`READY ${issuer}`);
