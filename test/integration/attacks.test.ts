// The attack run: each bypass and hostile-client case of the "secure by default" work, against a real
// `portcullis run` with a recording workload behind it, under `compatibility: secure` (the default) and
// `istio-exact`. Every refused case asserts the status AND that the workload saw nothing. A tally line
// (`attack tally: …`) is printed for the record.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tls from 'node:tls';
import { SignJWT, importJWK, type JWK } from 'jose';
import { startH1Upstream, startProxy, rawTls, type ProxyUnderTest, type RecordingUpstream } from './harness.js';
import { rawH2cUpstream } from '../helpers/h2-raw.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../helpers/paths.js';

const JWK_PRIVATE = JSON.parse(readFileSync(join(repoRoot(), 'test', 'fixtures', 'jwt', 'private.jwk.json'), 'utf8')) as JWK;
const JWKS = readFileSync(join(repoRoot(), 'test', 'fixtures', 'jwt', 'jwks.json'), 'utf8').replace(/\s+/g, ' ');
const ISSUER = 'https://issuer.attack.test';

const POLICY = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-prod, namespace: foo}
spec:
  action: DENY
  rules:
  - when: [{key: "request.headers[x-env]", values: ["prod"]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin, namespace: foo}
spec:
  action: DENY
  rules:
  - to: [{operation: {paths: ["/admin*"]}}]
  - to: [{operation: {hosts: ["admin.api"]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: require-jwt, namespace: foo}
spec:
  action: DENY
  rules:
  - to: [{operation: {paths: ["/jwt/*"]}}]
    from: [{source: {notRequestPrincipals: ["*"]}}]
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: foo}
spec:
  jwtRules:
  - issuer: ${ISSUER}
    jwks: '${JWKS}'
`;

async function token(claims: Record<string, unknown>, exp: boolean): Promise<string> {
  const key = await importJWK(JWK_PRIVATE, 'RS256');
  let jwt = new SignJWT({ ...claims }).setProtectedHeader({ alg: 'RS256', kid: JWK_PRIVATE.kid as string }).setIssuer(ISSUER).setSubject('attacker').setIssuedAt();
  if (exp) jwt = jwt.setExpirationTime('1h');
  return jwt.sign(key);
}

function statusOf(raw: string): number {
  const m = /^HTTP\/1\.1 (\d{3})/.exec(raw);
  return m ? Number(m[1]) : 0;
}

type Compat = 'secure' | 'istio-exact';
interface Case {
  name: string;
  /** Raw HTTP/1.1 request bytes (the JWT placeholder `{TOKEN}`/`{NOEXP}` is filled in). */
  raw: string;
  /** Expected status per setting; `forward` = Istio's documented behaviour, the workload receives it. */
  expect: Record<Compat, number | 'forward'>;
}

const CASES: Case[] = [
  { name: 'repeated header x-env: dev + x-env: prod', raw: 'GET /ok HTTP/1.1\r\nHost: api\r\nx-env: dev\r\nx-env: prod\r\n\r\n', expect: { secure: 403, 'istio-exact': 403 } },
  { name: 'listed header x-env: dev, prod', raw: 'GET /ok HTTP/1.1\r\nHost: api\r\nx-env: dev, prod\r\n\r\n', expect: { secure: 403, 'istio-exact': 403 } },
  { name: 'encoded slash /public/..%2fadmin', raw: 'GET /public/..%2fadmin HTTP/1.1\r\nHost: api\r\n\r\n', expect: { secure: 400, 'istio-exact': 'forward' } },
  { name: 'encoded backslash /public/..%5Cadmin', raw: 'GET /public/..%5Cadmin HTTP/1.1\r\nHost: api\r\n\r\n', expect: { secure: 400, 'istio-exact': 'forward' } },
  { name: 'encoded slash /%2Fadmin', raw: 'GET /%2Fadmin HTTP/1.1\r\nHost: api\r\n\r\n', expect: { secure: 400, 'istio-exact': 'forward' } },
  { name: 'case /ADMIN', raw: 'GET /ADMIN HTTP/1.1\r\nHost: api\r\n\r\n', expect: { secure: 403, 'istio-exact': 'forward' } },
  { name: 'case /Admin/users', raw: 'GET /Admin/users HTTP/1.1\r\nHost: api\r\n\r\n', expect: { secure: 403, 'istio-exact': 'forward' } },
  { name: 'absolute-form HTTP://API/Admin', raw: 'GET HTTP://API/Admin HTTP/1.1\r\nHost: api\r\n\r\n', expect: { secure: 403, 'istio-exact': 'forward' } },
  { name: 'host admin.api:443', raw: 'GET /ok HTTP/1.1\r\nHost: admin.api:443\r\n\r\n', expect: { secure: 403, 'istio-exact': 'forward' } },
  { name: 'host Admin.Api.:8443', raw: 'GET /ok HTTP/1.1\r\nHost: Admin.Api.:8443\r\n\r\n', expect: { secure: 403, 'istio-exact': 'forward' } },
  { name: 'JWT without exp', raw: 'GET /jwt/a HTTP/1.1\r\nHost: api\r\nAuthorization: Bearer {NOEXP}\r\n\r\n', expect: { secure: 401, 'istio-exact': 'forward' } },
  { name: 'JWT only in ?access_token=', raw: 'GET /jwt/a?access_token={TOKEN} HTTP/1.1\r\nHost: api\r\n\r\n', expect: { secure: 403, 'istio-exact': 'forward' } },
];

const tally: Record<Compat, { cases: number; passed: number; bypasses: number; documentedForwards: number }> = {
  secure: { cases: 0, passed: 0, bypasses: 0, documentedForwards: 0 },
  'istio-exact': { cases: 0, passed: 0, bypasses: 0, documentedForwards: 0 },
};

for (const compat of ['secure', 'istio-exact'] as const) {
  describe(`attack run, compatibility: ${compat}`, () => {
    let upstream: RecordingUpstream;
    let proxy: ProxyUnderTest;
    let tokens: { TOKEN: string; NOEXP: string };
    before(async () => {
      upstream = await startH1Upstream();
      proxy = await startProxy({ policy: POLICY, upstream: upstream.url, flags: ['--compatibility', compat] });
      tokens = { TOKEN: await token({}, true), NOEXP: await token({}, false) };
    });
    after(async () => { await proxy.stop(); await upstream.close(); });

    for (const c of CASES) {
      it(`${c.name}: ${c.expect[compat] === 'forward' ? 'forwarded (documented Istio behaviour)' : `${c.expect[compat]}, nothing upstream`}`, async () => {
        tally[compat].cases++;
        const raw = c.raw.replace('{TOKEN}', tokens.TOKEN).replace('{NOEXP}', tokens.NOEXP).replace('\r\n\r\n', '\r\nConnection: close\r\n\r\n');
        const before = { requests: upstream.requests.length, bytes: upstream.bytes };
        const answer = await rawTls(proxy, proxy.svids.frontend, raw);
        const status = statusOf(answer);
        const reached = upstream.requests.length > before.requests || upstream.bytes > before.bytes;
        const want = c.expect[compat];
        if (want !== 'forward' && reached) tally[compat].bypasses++;
        if (want === 'forward') {
          assert.equal(status, 200, answer.slice(0, 200));
          assert.ok(reached, 'the workload receives it');
          tally[compat].documentedForwards++;
        } else {
          assert.equal(status, want, answer.slice(0, 200));
          assert.equal(upstream.requests.length, before.requests, 'no request reached the workload');
          assert.equal(upstream.bytes, before.bytes, 'no byte reached the workload');
        }
        tally[compat].passed++;
      });
    }

    it('oversized header block in one write: the 431 arrives (no reset), nothing upstream', async () => {
      tally[compat].cases++;
      const before = upstream.bytes;
      const answer = await rawTls(proxy, proxy.svids.frontend, `GET /ok HTTP/1.1\r\nHost: api\r\nx-big: ${'a'.repeat(200_000)}\r\n\r\n`);
      assert.equal(statusOf(answer), 431, JSON.stringify(answer.slice(0, 80)));
      assert.equal(upstream.bytes, before);
      tally[compat].passed++;
    });
  });
}

/** Sends a POST head with a 100-byte length and 6 body bytes, then vanishes (TCP FIN or destroy). */
function truncatedPost(proxy: ProxyUnderTest, how: 'end' | 'destroy', framing: 'length' | 'chunked'): Promise<void> {
  return new Promise((resolve) => {
    const c = proxy.svids.frontend;
    const s = tls.connect({ host: '127.0.0.1', port: proxy.port, ca: proxy.caPem, cert: c.chainPem, key: c.keyPem, ALPNProtocols: ['http/1.1'] }, () => {
      s.write(`POST /upload HTTP/1.1\r\nHost: api\r\n${framing === 'length' ? 'content-length: 100' : 'transfer-encoding: chunked'}\r\n\r\n`);
      s.write(framing === 'length' ? 'abcdef' : '6\r\nabcdef\r\n');
      setTimeout(() => { if (how === 'end') s.end(); else s.destroy(); resolve(); }, 150);
    });
    s.on('error', () => undefined);
  });
}

describe('request integrity: an HTTP/1.1 client vanishing mid-body', () => {
  it('h2c workload: RST_STREAM without END_STREAM, never a truncated body as complete', async () => {
    const upstream = await rawH2cUpstream();
    const proxy = await startProxy({ policy: POLICY, upstream: upstream.url });
    try {
      for (const how of ['end', 'destroy'] as const) {
        for (const framing of ['length', 'chunked'] as const) {
          const known = new Set(upstream.streams.keys());
          await truncatedPost(proxy, how, framing);
          let stream: { endStream: boolean; rst: number | null; dataBytes: number } | undefined;
          for (let i = 0; i < 50; i++) {
            stream = [...upstream.streams.entries()].find(([id]) => !known.has(id))?.[1];
            if (stream?.rst !== null && stream?.rst !== undefined) break;
            await new Promise((r) => setTimeout(r, 20));
          }
          assert.ok(stream, `${how}/${framing}: the workload saw the stream`);
          assert.equal(stream.endStream, false, `${how}/${framing}: END_STREAM must not arrive`);
          assert.equal(stream.rst, 8, `${how}/${framing}: RST_STREAM(CANCEL)`);
        }
      }
    } finally {
      await proxy.stop();
      await upstream.close();
    }
  });

  it('HTTP/1.1 workload: the request is aborted, never completed', async () => {
    const seen: { complete: boolean; aborted: boolean }[] = [];
    const upstream = await startH1Upstream(undefined, {
      streamBody: (req) => {
        const rec = { complete: false, aborted: false };
        seen.push(rec);
        req.on('data', () => undefined);
        req.on('end', () => { rec.complete = req.complete; });
        req.on('aborted', () => { rec.aborted = true; });
        req.on('error', () => undefined);
      },
    });
    const proxy = await startProxy({ policy: POLICY, upstream: upstream.url });
    try {
      for (const framing of ['length', 'chunked'] as const) {
        await truncatedPost(proxy, 'end', framing);
        for (let i = 0; i < 50 && !(seen.at(-1)?.aborted); i++) await new Promise((r) => setTimeout(r, 20));
        assert.deepEqual(seen.at(-1), { complete: false, aborted: true }, framing);
      }
    } finally {
      await proxy.stop();
      await upstream.close();
    }
  });
});

after(() => {
  for (const [compat, t] of Object.entries(tally)) {
    process.stdout.write(`# attack tally (${compat}): ${t.passed}/${t.cases} passed, ${t.bypasses} bypasses, ${t.documentedForwards} forwarded as Istio documents\n`);
  }
});
