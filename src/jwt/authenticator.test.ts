import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createJwtAuthenticator, jwksCacheFor } from './authenticator.js';
import type { AuthnResult, JwtAuthenticatorOptions, JwtRequestView } from './types.js';
import type { JwtProviderSpec } from '../policy/ir.js';
import { authOptions, jwksJson, makeKey, mint, provider, rawToken, type TestKey } from './testing.js';

const ISS = 'https://issuer.example';
const NOW_MS = 1_800_000_000_000;
const NOW = NOW_MS / 1000;

let rsa: TestKey;
let ec: TestKey;
let other: TestKey;

before(async () => {
  rsa = await makeKey('RS256', 'rsa-1');
  ec = await makeKey('ES256', 'ec-1');
  other = await makeKey('RS256', 'rsa-1'); // same kid, different key: a forgery attempt
});

function inlineProvider(overrides: Partial<JwtProviderSpec> = {}): JwtProviderSpec {
  return provider({ issuer: ISS, jwks: { kind: 'inline', json: jwksJson(rsa, ec) }, ...overrides });
}

function opts(overrides: Partial<JwtAuthenticatorOptions> = {}): JwtAuthenticatorOptions {
  return authOptions({ now: () => NOW_MS, ...overrides });
}

function req(headers: JwtRequestView['headers'] = {}, target = '/api', method = 'GET'): JwtRequestView {
  return { method, target, headers };
}

function bearer(token: string): JwtRequestView {
  return req({ authorization: `Bearer ${token}` });
}

async function run(providers: JwtProviderSpec[], request: JwtRequestView, o = opts()): Promise<AuthnResult> {
  const authn = createJwtAuthenticator(providers, o);
  try {
    return await authn.authenticate(request);
  } finally {
    authn.close();
  }
}

function assertFailed(result: AuthnResult, status: number, reason: string, message: string): void {
  assert.equal(result.kind, 'failed', JSON.stringify(result));
  if (result.kind !== 'failed') return;
  assert.deepEqual({ status: result.status, reason: result.reason, message: result.message }, { status, reason, message });
}

function claims(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { iss: ISS, sub: 'alice', exp: NOW + 600, ...extra };
}

describe('token locations', () => {
  it('no token anywhere is none, with no principal', async () => {
    const result = await run([inlineProvider()], req({ accept: '*/*' }));
    assert.equal(result.kind, 'none');
  });

  it('accepts a valid RS256 token in Authorization: Bearer (Istio default)', async () => {
    const result = await run([inlineProvider()], bearer(await mint(rsa, claims())));
    assert.equal(result.kind, 'verified');
    if (result.kind !== 'verified') return;
    assert.deepEqual({ iss: result.jwt.issuer, sub: result.jwt.subject }, { iss: ISS, sub: 'alice' });
    assert.equal(result.jwt.claims['exp'], NOW + 600);
  });

  it('accepts a valid ES256 token in the access_token query parameter (Istio default)', async () => {
    const token = await mint(ec, claims());
    const result = await run([inlineProvider()], req({}, `/api?x=1&access_token=${token}`));
    assert.equal(result.kind, 'verified');
  });

  it('ignores a token in an unconfigured header or parameter', async () => {
    const token = await mint(rsa, claims({ exp: NOW - 3600 }));
    const p = inlineProvider({ fromHeaders: [{ name: 'x-jwt', prefix: '' }] });
    assert.equal((await run([p], bearer(token))).kind, 'none');
    assert.equal((await run([p], req({}, `/api?access_token=${token}`))).kind, 'none');
    assert.equal((await run([p], req({ 'x-other': token }))).kind, 'none');
  });

  it('treats a header without the configured prefix as missing, and finds the prefix anywhere in the value', async () => {
    const token = await mint(rsa, claims());
    assert.equal((await run([inlineProvider()], req({ authorization: `Basic ${token}` }))).kind, 'none');
    assert.equal((await run([inlineProvider()], req({ authorization: token }))).kind, 'none');
    const p = inlineProvider({ fromHeaders: [{ name: 'X-Auth', prefix: 'tok=' }] });
    const found = await run([p], req({ 'x-auth': `v1 tok=${token}` }));
    assert.equal(found.kind, 'verified');
    // Envoy takes everything after the prefix: trailing text makes the token malformed, not ignored.
    assertFailed(await run([p], req({ 'x-auth': `v1 tok=${token}, more` })), 401, 'jwt_bad_signature', 'Jwt verification fails');
    assertFailed(await run([inlineProvider()], req({ authorization: 'Bearer ' })), 401, 'jwt_malformed', 'Jwt is not in the form of Header.Payload.Signature');
  });

  it('reads fromCookies', async () => {
    const token = await mint(rsa, claims());
    const p = inlineProvider({ fromCookies: ['session'] });
    assert.equal((await run([p], req({ cookie: `a=b; session=${token}` }))).kind, 'verified');
    assert.equal((await run([p], bearer(token))).kind, 'none');
  });

  it('skips JWT on a CORS preflight even with an expired token', async () => {
    const token = await mint(rsa, claims({ exp: NOW - 3600 }));
    const headers = { authorization: `Bearer ${token}`, origin: 'https://app', 'access-control-request-method': 'POST' };
    assert.equal((await run([inlineProvider()], req(headers, '/api', 'OPTIONS'))).kind, 'none');
    // Not a preflight without Access-Control-Request-Method: the token is checked.
    const plain = await run([inlineProvider()], req({ authorization: `Bearer ${token}`, origin: 'https://app' }, '/api', 'OPTIONS'));
    assertFailed(plain, 401, 'jwt_expired', 'Jwt is expired');
  });

  it('refuses a token above maxTokenBytes', async () => {
    const token = await mint(rsa, claims({ pad: 'x'.repeat(200) }));
    assertFailed(await run([inlineProvider()], bearer(token), opts({ maxTokenBytes: 100 })), 401, 'jwt_too_large', 'Jwt verification fails');
  });
});

describe('verification outcomes (Envoy bodies)', () => {
  it('malformed: not three segments', async () => {
    assertFailed(await run([inlineProvider()], bearer('abc.def')), 401, 'jwt_malformed', 'Jwt is not in the form of Header.Payload.Signature');
  });

  it('malformed: header is not base64url JSON', async () => {
    assertFailed(await run([inlineProvider()], bearer('e30x.e30.c2ln')), 401, 'jwt_malformed', 'Jwt header is an invalid Base64url input or an invalid JSON');
    assertFailed(await run([inlineProvider()], bearer(`${Buffer.from('[1]').toString('base64url')}.e30.c2ln`)), 401, 'jwt_malformed', 'Jwt header is an invalid Base64url input or an invalid JSON');
  });

  it('bad signature: a token signed by another key with the same kid', async () => {
    const forged = await mint(other, claims());
    assertFailed(await run([inlineProvider()], bearer(forged)), 401, 'jwt_bad_signature', 'Jwt verification fails');
  });

  it('bad signature: payload swapped after signing', async () => {
    const [h, , s] = (await mint(rsa, claims())).split('.');
    const p = Buffer.from(JSON.stringify(claims({ sub: 'admin' }))).toString('base64url');
    assertFailed(await run([inlineProvider()], bearer(`${h}.${p}.${s}`)), 401, 'jwt_bad_signature', 'Jwt verification fails');
  });

  it('expired (beyond the 60 s skew) and accepted within the skew', async () => {
    assertFailed(await run([inlineProvider()], bearer(await mint(rsa, claims({ exp: NOW - 61 })))), 401, 'jwt_expired', 'Jwt is expired');
    assert.equal((await run([inlineProvider()], bearer(await mint(rsa, claims({ exp: NOW - 59 }))))).kind, 'verified');
  });

  it('nbf in the future (beyond the skew)', async () => {
    assertFailed(await run([inlineProvider()], bearer(await mint(rsa, claims({ nbf: NOW + 61 })))), 401, 'jwt_not_yet_valid', 'Jwt not yet valid');
    assert.equal((await run([inlineProvider()], bearer(await mint(rsa, claims({ nbf: NOW + 30 }))))).kind, 'verified');
  });

  it('accepts a token without exp unless requireExpiration', async () => {
    const token = await mint(rsa, { iss: ISS, sub: 'alice' });
    assert.equal((await run([inlineProvider()], bearer(token))).kind, 'verified');
    assertFailed(await run([inlineProvider()], bearer(token), opts({ requireExpiration: true })), 401, 'jwt_expired', 'Jwt verification fails');
  });

  it('unknown issuer with a valid signature', async () => {
    const token = await mint(rsa, claims({ iss: 'https://elsewhere.example' }));
    assertFailed(await run([inlineProvider()], bearer(token)), 401, 'jwt_unknown_issuer', 'Jwt issuer is not configured');
  });

  it('issuer configured only for another location is unknown at this one', async () => {
    const token = await mint(rsa, claims());
    const a = inlineProvider({ issuer: 'https://a.example', fromHeaders: [{ name: 'authorization', prefix: 'Bearer ' }] });
    const b = inlineProvider({ fromHeaders: [{ name: 'x-b', prefix: '' }] });
    assertFailed(await run([a, b], bearer(token)), 401, 'jwt_unknown_issuer', 'Jwt issuer is not configured');
    assert.equal((await run([a, b], req({ 'x-b': token }))).kind, 'verified');
  });

  it('audiences: string or array, mismatch is 403, empty list is not checked', async () => {
    const p = inlineProvider({ audiences: ['api', 'web'] });
    assert.equal((await run([p], bearer(await mint(rsa, claims({ aud: 'web' }))))).kind, 'verified');
    assert.equal((await run([p], bearer(await mint(rsa, claims({ aud: ['x', 'api'] }))))).kind, 'verified');
    assertFailed(await run([p], bearer(await mint(rsa, claims({ aud: ['x', 'y'] })))), 403, 'jwt_bad_audience', 'Audiences in Jwt are not allowed');
    assertFailed(await run([p], bearer(await mint(rsa, claims()))), 403, 'jwt_bad_audience', 'Audiences in Jwt are not allowed');
    assert.equal((await run([inlineProvider()], bearer(await mint(rsa, claims({ aud: 'anything' }))))).kind, 'verified');
  });

  it('several tokens: one invalid is 401, several valid are refused', async () => {
    const good = await mint(rsa, claims());
    const good2 = await mint(ec, claims({ sub: 'bob' }));
    const expired = await mint(rsa, claims({ exp: NOW - 3600 }));
    assertFailed(await run([inlineProvider()], req({ authorization: `Bearer ${good}` }, `/api?access_token=${expired}`)), 401, 'jwt_expired', 'Jwt is expired');
    assertFailed(await run([inlineProvider()], req({ authorization: `Bearer ${good}` }, `/api?access_token=${good2}`)), 401, 'jwt_multiple', 'Jwt verification fails');
    assertFailed(await run([inlineProvider()], req({ authorization: [`Bearer ${good}`, `Bearer ${good2}`] })), 401, 'jwt_multiple', 'Jwt verification fails');
    // The same token in two locations is one token.
    assert.equal((await run([inlineProvider()], req({ authorization: `Bearer ${good}` }, `/api?access_token=${good}`))).kind, 'verified');
  });
});

describe('algorithm pinning and forbidden headers', () => {
  it('rejects alg none (with or without a signature)', async () => {
    const unsigned = rawToken({ alg: 'none' }, claims(), '');
    assertFailed(await run([inlineProvider()], bearer(unsigned)), 401, 'jwt_forbidden_header', 'Jwt verification fails');
    const noneWithSig = rawToken({ alg: 'none', kid: 'rsa-1' }, claims());
    assertFailed(await run([inlineProvider()], bearer(noneWithSig)), 401, 'jwt_forbidden_header', 'Jwt verification fails');
  });

  for (const name of ['jku', 'x5u', 'jwk', 'x5c']) {
    it(`rejects a correctly signed token carrying a ${name} header`, async () => {
      const value = name === 'jwk' ? rsa.publicJwk : name === 'x5c' ? ['MIIB'] : 'https://attacker.example/keys';
      const token = await mint(rsa, claims(), { [name]: value });
      assertFailed(await run([inlineProvider()], bearer(token)), 401, 'jwt_forbidden_header', 'Jwt verification fails');
    });
  }

  it('rejects a crit header', async () => {
    const token = rawToken({ alg: 'RS256', kid: 'rsa-1', crit: ['exp'], exp: 1 }, claims());
    assertFailed(await run([inlineProvider()], bearer(token)), 401, 'jwt_forbidden_header', 'Jwt verification fails');
  });

  it('an alg the pinned key does not allow finds no key (HS256 with the RSA public key as secret)', async () => {
    const { createHmac } = await import('node:crypto');
    const header = Buffer.from(JSON.stringify({ alg: 'HS256', kid: 'rsa-1' })).toString('base64url');
    const payload = Buffer.from(JSON.stringify(claims())).toString('base64url');
    const secret = JSON.stringify(rsa.publicJwk);
    const sig = createHmac('sha256', secret).update(`${header}.${payload}`).digest('base64url');
    assertFailed(await run([inlineProvider()], bearer(`${header}.${payload}.${sig}`)), 401, 'jwt_no_matching_key', "Jwks doesn't have key to match kid or alg from Jwt");
  });

  it('a key pinned to RS256 does not verify a PS256 token even with the same key material', async () => {
    const { exportJWK, importJWK } = await import('jose');
    const privateJwk = await exportJWK(rsa.privateKey);
    const ps = { ...rsa, alg: 'PS256', privateKey: (await importJWK({ ...privateJwk, alg: 'PS256' }, 'PS256')) as typeof rsa.privateKey };
    const token = await mint(ps, claims());
    assertFailed(await run([inlineProvider()], bearer(token)), 401, 'jwt_no_matching_key', "Jwks doesn't have key to match kid or alg from Jwt");
    // Without `alg` in the JWK the RSA family is derived from kty and PS256 is accepted.
    const unpinned = provider({ issuer: ISS, jwks: { kind: 'inline', json: JSON.stringify({ keys: [{ ...rsa.publicJwk, alg: undefined }] }) } });
    assert.equal((await run([unpinned], bearer(token))).kind, 'verified');
  });

  it('an ES256 token against an RSA-only key set finds no key; kid is only a lookup key', async () => {
    const p = provider({ issuer: ISS, jwks: { kind: 'inline', json: jwksJson(rsa) } });
    const token = await mint({ ...ec, kid: 'rsa-1' }, claims());
    assertFailed(await run([p], bearer(token)), 401, 'jwt_no_matching_key', "Jwks doesn't have key to match kid or alg from Jwt");
    const unknownKid = await mint({ ...rsa, kid: 'nope' }, claims());
    assertFailed(await run([p], bearer(unknownKid)), 401, 'jwt_no_matching_key', "Jwks doesn't have key to match kid or alg from Jwt");
  });

  it('a JWK whose alg disagrees with its kty is ignored and reported', async () => {
    const bad = { ...ec.publicJwk, alg: 'RS256' };
    const authn = createJwtAuthenticator([provider({ issuer: ISS, jwks: { kind: 'inline', json: JSON.stringify({ keys: [bad, rsa.publicJwk] }) } })], opts());
    assert.match(authn.warnings?.join('\n') ?? '', /alg RS256 does not match kty EC/);
    assertFailed(await authn.authenticate(bearer(await mint(ec, claims()))), 401, 'jwt_no_matching_key', "Jwks doesn't have key to match kid or alg from Jwt");
    authn.close();
  });

  it('a provider without any usable key set fails every token closed but lets tokenless requests pass', async () => {
    const p = provider({ issuer: ISS, jwks: { kind: 'inline', json: '{"keys": []}' } });
    assertFailed(await run([p], bearer(await mint(rsa, claims()))), 401, 'jwks_unavailable', 'Jwks remote fetch is failed');
    assert.equal((await run([p], req())).kind, 'none');
  });
});

describe('edits', () => {
  it('removes the token header unless forwardOriginalToken', async () => {
    const token = await mint(rsa, claims());
    const removed = await run([inlineProvider()], bearer(token));
    assert.equal(removed.kind, 'verified');
    if (removed.kind === 'verified') assert.deepEqual(removed.edits, { remove: ['authorization'], set: {} });
    const kept = await run([inlineProvider({ forwardOriginalToken: true })], bearer(token));
    if (kept.kind !== 'verified') assert.fail(JSON.stringify(kept));
    assert.deepEqual(kept.edits, { remove: [], set: {} });
    const custom = await run([inlineProvider({ fromHeaders: [{ name: 'X-Token', prefix: '' }] })], req({ 'x-token': token }));
    if (custom.kind !== 'verified') assert.fail(JSON.stringify(custom));
    assert.deepEqual(custom.edits.remove, ['x-token']);
    const query = await run([inlineProvider()], req({}, `/?access_token=${token}`));
    if (query.kind !== 'verified') assert.fail(JSON.stringify(query));
    assert.deepEqual(query.edits, { remove: [], set: {}, removeQueryParams: ['access_token'] });
    const queryKept = await run([inlineProvider({ forwardOriginalToken: true })], req({}, `/?access_token=${token}`));
    if (queryKept.kind !== 'verified') assert.fail(JSON.stringify(queryKept));
    assert.deepEqual(queryKept.edits, { remove: [], set: {} });
  });

  it('outputPayloadToHeader carries the base64url payload', async () => {
    const payload = claims({ groups: ['a'] });
    const token = await mint(rsa, payload);
    const result = await run([inlineProvider({ outputPayloadToHeader: 'X-Jwt-Payload' })], bearer(token));
    if (result.kind !== 'verified') assert.fail(JSON.stringify(result));
    const value = result.edits.set['x-jwt-payload'];
    assert.ok(value);
    assert.deepEqual(JSON.parse(Buffer.from(value, 'base64url').toString()), payload);
    assert.ok(!result.edits.remove.includes('x-jwt-payload'));
  });

  it('outputClaimToHeaders: string/number/bool and nested claims; objects and missing claims skipped', async () => {
    const token = await mint(rsa, claims({ org: { team: { name: 'red' } }, n: 7, f: 2.5, neg: -3, admin: false, obj: { a: 1 }, nl: 'a\r\nb', empty: '' }));
    const p = inlineProvider({
      outputClaimToHeaders: [
        { header: 'x-sub', claim: 'sub' },
        { header: 'x-team', claim: 'org.team.name' },
        { header: 'x-n', claim: 'n' },
        { header: 'x-f', claim: 'f' },
        { header: 'x-neg', claim: 'neg' },
        { header: 'x-empty', claim: 'empty' },
        { header: 'x-admin', claim: 'admin' },
        { header: 'x-obj', claim: 'obj' },
        { header: 'x-missing', claim: 'nope.deeper' },
        { header: 'x-nl', claim: 'nl' },
      ],
    });
    const result = await run([p], bearer(token));
    if (result.kind !== 'verified') assert.fail(JSON.stringify(result));
    assert.deepEqual(result.edits.set, { 'x-sub': 'alice', 'x-team': 'red', 'x-n': '7', 'x-f': '2.500000', 'x-neg': '-3.000000', 'x-admin': 'false' });
    // Client-sent copies of the unset output headers are stripped (Envoy sanitizeHeaders).
    assert.deepEqual(result.edits.remove.sort(), ['authorization', 'x-empty', 'x-missing', 'x-nl', 'x-obj']);
  });

  it('never writes an output header whose name is not a valid header name', async () => {
    const p = inlineProvider({ outputClaimToHeaders: [{ header: ':path', claim: 'sub' }, { header: 'x ok', claim: 'sub' }, { header: 'x-ok', claim: 'sub' }] });
    const authn = createJwtAuthenticator([p], opts());
    assert.equal(authn.warnings?.length, 2);
    const result = await authn.authenticate(bearer(await mint(rsa, claims())));
    authn.close();
    if (result.kind !== 'verified') assert.fail(JSON.stringify(result));
    assert.deepEqual(result.edits.set, { 'x-ok': 'alice' });
  });

  it('a request without a token has client copies of output headers stripped', async () => {
    const p = inlineProvider({ outputClaimToHeaders: [{ header: 'X-Sub', claim: 'sub' }], outputPayloadToHeader: 'x-payload' });
    const result = await run([p], req({ 'x-sub': 'admin' }));
    assert.deepEqual(result, { kind: 'none', edits: { remove: ['x-payload', 'x-sub'], set: {} } });
  });

  it('verified claims are frozen and subject is empty without sub', async () => {
    const result = await run([inlineProvider()], bearer(await mint(rsa, { iss: ISS, exp: NOW + 60, nested: { a: 1 } })));
    if (result.kind !== 'verified') assert.fail(JSON.stringify(result));
    assert.equal(result.jwt.subject, '');
    assert.ok(Object.isFrozen(result.jwt.claims) && Object.isFrozen(result.jwt.claims['nested']));
    assert.deepEqual(result.spaceDelimitedClaims, ['scope', 'permission']);
  });
});

describe('a repeated token', () => {
  it('is answered at once (no promise) as its first verification was, its time claims checked again each time', async () => {
    let now = NOW_MS;
    const authn = createJwtAuthenticator([inlineProvider()], opts({ now: () => now }));
    try {
      const request = bearer(await mint(rsa, claims({ exp: NOW + 120 })));
      const first = await authn.authenticate(request);
      assert.equal(first.kind, 'verified');
      const again = authn.authenticate(request);
      assert.ok(!(again instanceof Promise), 'a repeated, verified token needs no promise');
      assert.deepEqual(again, first);
      now = NOW_MS + 181_000; // past exp and the 60 s skew
      const later = authn.authenticate(request);
      assert.ok(!(later instanceof Promise));
      assertFailed(later as AuthnResult, 401, 'jwt_expired', 'Jwt is expired');
    } finally {
      authn.close();
    }
  });

  it('a token never verified, or forged with a known kid, still goes through the signature check', async () => {
    const authn = createJwtAuthenticator([inlineProvider()], opts());
    try {
      const forged = bearer(await mint(other, claims()));
      const pending = authn.authenticate(forged);
      assert.ok(pending instanceof Promise, 'an unverified signature is checked, never answered at once');
      assertFailed(await pending, 401, 'jwt_bad_signature', 'Jwt verification fails');
      // A failed signature is not remembered: the same forgery is checked again.
      assert.ok(authn.authenticate(forged) instanceof Promise);
    } finally {
      authn.close();
    }
  });
});

describe('robustness', () => {
  it('an issuer-less provider (jwksUri style) accepts any iss its keys verify', async () => {
    const p = inlineProvider({ issuer: '' });
    const result = await run([p], bearer(await mint(rsa, claims({ iss: 'https://any.example' }))));
    assert.equal(result.kind, 'verified');
  });

  it('never throws: a failing clock fails closed', async () => {
    const token = await mint(rsa, claims());
    const result = await run([inlineProvider()], bearer(token), opts({ now: () => { throw new Error('clock'); } }));
    assertFailed(result, 401, 'jwt_invalid', 'Jwt verification fails');
  });

  it('no providers: always none with no edits', async () => {
    assert.deepEqual(await run([], bearer('garbage')), { kind: 'none', edits: { remove: [], set: {} } });
  });

  it('garbage in every configured location never throws', async () => {
    const samples = ['', '.', '..', '...', 'a.b.c', '=.=.=', 'e30.e30.', 'e30.e30.e30', `${'A'.repeat(5000)}.e30.e30`];
    for (const s of samples) {
      const result = await run([inlineProvider({ fromHeaders: [{ name: 'x-t', prefix: '' }] })], req({ 'x-t': s }));
      assert.equal(result.kind, 'failed', s);
    }
  });
});

describe('jwksUri with file:// (as `portcullis check` uses it)', () => {
  it('verifies against a key set read from a file and fails closed when the file is missing', async () => {
    const { mkdtempSync, rmSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { pathToFileURL } = await import('node:url');
    const { createJwksFetcher } = await import('./fetch-jwks.js');
    const dir = mkdtempSync(join(tmpdir(), 'portcullis-jwt-'));
    const fetchJwks = createJwksFetcher({ allowHttps: false });
    try {
      const file = join(dir, 'jwks.json');
      writeFileSync(file, jwksJson(ec));
      const token = await mint(ec, claims());
      const ok = provider({ issuer: ISS, jwks: { kind: 'uri', uri: pathToFileURL(file).href } });
      assert.equal((await run([ok], bearer(token), opts({ fetchJwks }))).kind, 'verified');
      const missing = provider({ issuer: ISS, jwks: { kind: 'uri', uri: pathToFileURL(join(dir, 'none.json')).href } });
      assertFailed(await run([missing], bearer(token), opts({ fetchJwks })), 401, 'jwks_unavailable', 'Jwks remote fetch is failed');
      const https = provider({ issuer: ISS, jwks: { kind: 'uri', uri: 'https://127.0.0.1:1/jwks' } });
      assertFailed(await run([https], bearer(token), opts({ fetchJwks })), 401, 'jwks_unavailable', 'Jwks remote fetch is failed');
    } finally {
      await fetchJwks.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('a JWKS cache shared by the authenticators of successive policy snapshots', () => {
  it('a reload keeps warm keys: the next authenticator verifies without a fetch, even while the issuer is down', async () => {
    const uri = 'https://issuer.example/jwks';
    let fetches = 0;
    let issuerUp = true;
    const o = opts({
      fetchJwks: (u) => {
        fetches++;
        return issuerUp && u === uri ? Promise.resolve(jwksJson(rsa)) : Promise.reject(new Error('issuer down'));
      },
    });
    const jwksCache = jwksCacheFor(o);
    const spec = provider({ issuer: ISS, jwks: { kind: 'uri', uri } });
    const token = await mint(rsa, claims());
    const first = createJwtAuthenticator([spec], { ...o, jwksCache });
    assert.equal((await first.authenticate(bearer(token))).kind, 'verified');
    assert.equal(fetches, 1);

    issuerUp = false;
    // The reloaded snapshot's authenticator comes before the old one is retired, as `run` installs them.
    const second = createJwtAuthenticator([spec], { ...o, jwksCache });
    first.close();
    assert.equal((await second.authenticate(bearer(token))).kind, 'verified');
    assert.equal(fetches, 1, 'no refetch for a URI the cache already holds');

    // Without the shared cache the same reload starts cold and fails closed while the issuer is down.
    const unshared = createJwtAuthenticator([spec], o);
    assertFailed(await unshared.authenticate(bearer(token)), 401, 'jwks_unavailable', 'Jwks remote fetch is failed');
    unshared.close();

    second.close();
    assert.equal(jwksCache.stats(uri), undefined, 'a URI no authenticator uses any more is forgotten');
    jwksCache.close();
  });
});
