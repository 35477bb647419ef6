// Integration: `jwksCa` — an HTTPS JWKS server whose certificate chains to a private CA (an in-cluster
// issuer) is trusted only when that CA is configured; the system roots are kept.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jwksJson, makeKey, mint, startJwksServer, type JwksTestServer, type TestKey } from '../../src/jwt/testing.js';
import { getText, mtlsAgent, startH1Upstream, startProxy, type ProxyUnderTest, type RecordingUpstream } from './harness.js';

describe('jwksCa: HTTPS JWKS with a private CA', () => {
  let key: TestKey;
  let jwks: JwksTestServer;
  let upstream: RecordingUpstream;
  let dir: string;
  let caFile: string;
  const policy = (uri: string) => `
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: foo}
spec:
  jwtRules:
  - issuer: https://issuer.in-cluster
    jwksUri: ${uri}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: need-jwt, namespace: foo}
spec:
  action: ALLOW
  rules:
  - from: [{source: {requestPrincipals: ["https://issuer.in-cluster/*"]}}]
`;
  before(async () => {
    key = await makeKey('ES256', 'k1');
    jwks = await startJwksServer(jwksJson(key));
    upstream = await startH1Upstream();
    dir = mkdtempSync(join(tmpdir(), 'portcullis-jwksca-'));
    caFile = join(dir, 'issuer-ca.pem');
    writeFileSync(caFile, jwks.ca);
  });
  after(async () => { await jwks.close(); await upstream.close(); rmSync(dir, { recursive: true, force: true }); });

  async function call(proxy: ProxyUnderTest): Promise<number> {
    const token = await mint(key, { iss: 'https://issuer.in-cluster', sub: 'alice', exp: Math.floor(Date.now() / 1000) + 600 });
    const agent = mtlsAgent(proxy, proxy.svids.frontend);
    try {
      return (await getText(`${proxy.origin}/orders`, agent, { headers: { authorization: `Bearer ${token}` } })).status;
    } finally { await agent.close(); }
  }

  it('with --jwks-ca the token verifies against keys fetched over HTTPS (200)', async () => {
    const proxy = await startProxy({ policy: policy(jwks.url), upstream: upstream.url, flags: ['--jwks-ca', caFile] });
    try {
      assert.equal(await call(proxy), 200);
      assert.ok(jwks.hits() >= 1, 'the JWKS server was fetched');
    } finally { await proxy.stop(); }
  });

  it('without it the private CA is not trusted: the fetch fails and the token is refused (401)', async () => {
    const hits = jwks.hits();
    const proxy = await startProxy({ policy: policy(jwks.url), upstream: upstream.url });
    try {
      assert.equal(await call(proxy), 401);
      assert.equal(jwks.hits(), hits, 'no document was accepted from an untrusted server');
    } finally { await proxy.stop(); }
  });

  it('an unusable jwksCa refuses to start, naming the key and the file', async () => {
    const bad = join(dir, 'not-a-ca.pem');
    writeFileSync(bad, 'not a certificate');
    await assert.rejects(startProxy({ policy: policy(jwks.url), upstream: upstream.url, flags: ['--jwks-ca', bad] }), new RegExp(`cannot load jwksCa ${bad.replace(/[/.]/g, '\\$&')}: no PEM certificate`));
  });
});
