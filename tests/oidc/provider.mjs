// A real OpenID Connect provider for the conformance suite: `oidc-provider` (OpenID
// Certified) on 127.0.0.1, with test clients and accounts, signing ID tokens with RS256 (the
// "google" client) and ES256 (the "corp" client). scripts/test starts it once and names it in
// REGSTACK_TEST_OIDC_ISSUER.
//
//   node tests/oidc/provider.mjs PORT
//
// Accounts need no registration: signing in as `alice@example.com` is an account with that
// verified address, `unverified:bob@example.com` one whose address is not verified, and
// `noemail:carol` one with no address at all. The subject (`sub`) is the login itself.
//
// Besides the provider's own routes it serves, for the failure scenarios only:
//   /sabotage/token?mode=same|expired|audience|nonce|issuer  the real token endpoint, with the
//        ID token's claims spoiled (`same`: untouched) and signed again with the provider's key;
//   /sabotage/slow-token  never answers;
//   /sabotage/junk-token  answers HTML;
//   /sabotage/rogue-jwks  a key set that does not hold the provider's keys.
// The interaction (sign-in) pages are this file's own minimal forms, so a browser-less client
// can drive them: GET /interaction/UID shows a form; POST /interaction/UID/login with
// `login=...` signs in and grants openid, email and profile.

import crypto from 'node:crypto';
import http from 'node:http';
import Provider from 'oidc-provider';

const port = Number(process.argv[2]);
const issuer = `http://127.0.0.1:${port}`;

const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
const rogue = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
const jwk = (key, kid, alg) => ({ ...key.export({ format: 'jwk' }), kid, alg, use: 'sig' });
const publicJwk = (key, kid, alg) => {
  const { d, p, q, dp, dq, qi, ...pub } = jwk(key, kid, alg);
  return pub;
};

// Loopback redirect URIs of a native client match on any port (RFC 8252), so one
// registration serves every regstack the suite starts.
const callbacks = ['google', 'corp', 'other'].map((p) => `http://127.0.0.1/api/auth/oauth/${p}/callback`);
export const clients = [
  {
    client_id: 'regstack-google',
    client_secret: 'google-client-secret-for-the-conformance-suite',
    application_type: 'native',
    redirect_uris: callbacks,
    grant_types: ['authorization_code'],
    response_types: ['code'],
    // Google's own method: the secret in the form body.
    token_endpoint_auth_method: 'client_secret_post',
    id_token_signed_response_alg: 'RS256',
  },
  {
    client_id: 'regstack-corp',
    client_secret: 'corp-client-secret-for-the-conformance-suite',
    application_type: 'native',
    redirect_uris: callbacks,
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'ES256',
  },
];

function claimsOf(login) {
  const [kind, rest] = login.includes(':') ? login.split(/:(.*)/s) : ['verified', login];
  const claims = { sub: login, name: `Test ${rest}` };
  if (kind === 'verified') Object.assign(claims, { email: rest, email_verified: true });
  if (kind === 'unverified') Object.assign(claims, { email: rest, email_verified: false });
  return claims;
}

const provider = new Provider(issuer, {
  clients,
  jwks: { keys: [jwk(rsa, 'rsa-1', 'RS256'), jwk(ec, 'ec-1', 'ES256')] },
  enabledJWA: { idTokenSigningAlgValues: ['RS256', 'ES256'] },
  findAccount: (_ctx, id) => ({ accountId: id, claims: () => claimsOf(id) }),
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  // The claims of the granted scopes go in the ID token itself, as Google puts them.
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: false } },
  pkce: { required: () => true },
  cookies: { keys: ['conformance-suite-cookie-key-0123456789'] },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  renderError: (ctx, out) => {
    ctx.type = 'text/plain';
    ctx.body = `error: ${out.error}: ${out.error_description ?? ''}`;
  },
});
provider.proxy = false;

// The interaction pages.
provider.use(async (ctx, next) => {
  const m = ctx.path.match(/^\/interaction\/([^/]+)(\/login)?$/);
  if (!m) return next();
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  if (ctx.method === 'GET' && !m[2]) {
    ctx.type = 'text/html';
    ctx.body = `<form method="post" action="/interaction/${details.uid}/login"><input name="login"><button>Sign in</button></form>`;
    return;
  }
  if (ctx.method === 'POST' && m[2]) {
    const body = await new Promise((resolve) => {
      let data = '';
      ctx.req.on('data', (c) => { data += c; });
      ctx.req.on('end', () => resolve(data));
    });
    const login = new URLSearchParams(body).get('login') ?? '';
    const grant = new provider.Grant({ accountId: login, clientId: details.params.client_id });
    grant.addOIDCScope('openid email profile');
    const grantId = await grant.save();
    const to = await provider.interactionResult(ctx.req, ctx.res, {
      login: { accountId: login },
      consent: { grantId },
    }, { mergeWithLastSubmission: false });
    ctx.status = 303;
    ctx.redirect(to);
    return;
  }
  return next();
});

const b64url = (buf) => Buffer.from(buf).toString('base64url');

// Signs `claims` again with the provider's RSA key, as the provider would.
function resign(idToken, spoil) {
  const [h, p] = idToken.split('.');
  const header = JSON.parse(Buffer.from(h, 'base64url'));
  const claims = spoil(JSON.parse(Buffer.from(p, 'base64url')));
  const head = b64url(JSON.stringify({ ...header, alg: 'RS256', kid: 'rsa-1' }));
  const body = b64url(JSON.stringify(claims));
  const signature = crypto.sign('sha256', Buffer.from(`${head}.${body}`), rsa);
  return `${head}.${body}.${b64url(signature)}`;
}

const spoilers = {
  // Signed again and otherwise untouched: the control that shows re-signing itself is sound.
  same: (c) => c,
  expired: (c) => ({ ...c, iat: c.iat - 3600, exp: Math.floor(Date.now() / 1000) - 600 }),
  audience: (c) => ({ ...c, aud: 'someone-else' }),
  nonce: (c) => ({ ...c, nonce: 'not-the-nonce-of-this-round-trip' }),
  issuer: (c) => ({ ...c, iss: 'https://issuer.invalid' }),
};

const handle = provider.callback();
http.createServer((req, res) => {
  const url = new URL(req.url, issuer);
  if (url.pathname === '/sabotage/slow-token') return; // never answers
  if (url.pathname === '/sabotage/junk-token') {
    res.writeHead(200, { 'content-type': 'text/html' });
    return res.end('<html><body>not a token answer</body></html>');
  }
  if (url.pathname === '/sabotage/rogue-jwks') {
    res.writeHead(200, { 'content-type': 'application/json' });
    return res.end(JSON.stringify({ keys: [publicJwk(rogue, 'rogue-1', 'RS256')] }));
  }
  if (url.pathname === '/sabotage/token') {
    const spoil = spoilers[url.searchParams.get('mode')];
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      const answer = await fetch(`${issuer}/token`, {
        method: 'POST',
        headers: { 'content-type': req.headers['content-type'], ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}) },
        body: Buffer.concat(chunks),
      });
      const json = await answer.json();
      if (json.id_token && spoil) json.id_token = resign(json.id_token, spoil);
      res.writeHead(answer.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(json));
    });
    return;
  }
  // Google's authorization request carries `prompt=select_account` and `access_type=online`,
  // which this provider does not know: the account chooser is the sign-in form here anyway.
  if (url.pathname === '/auth' && url.searchParams.get('prompt') === 'select_account') {
    url.searchParams.delete('prompt');
    url.searchParams.delete('access_type');
    req.url = `${url.pathname}?${url.searchParams}`;
  }
  return handle(req, res);
}).listen(port, '127.0.0.1', () => console.log(`oidc-provider listening on ${issuer}`));
