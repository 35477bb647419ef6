// The replayable capture as the data plane writes it: a request runs through the request stages (in-memory
// exchange, real JWT verification) and the decision event must carry the re-decidable facts, never a secret.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compilePolicies } from '../policy/compile.js';
import type { CompileOptions } from '../policy/ir.js';
import type { PolicySnapshot } from '../policy/snapshot.js';
import { jwksJson, makeKey, mint } from '../jwt/testing.js';
import { createCheckAuthenticator } from '../check/decide.js';
import { memoryExchange, recordingForwarder } from '../proxy/memory-exchange.js';
import { handleRequest } from '../proxy/stages.js';
import { parseSpiffeId, toPeerIdentity } from '../identity/spiffe.js';
import type { ProxyDeps } from '../proxy/types.js';
import type { CaptureSettings } from './capture.js';
import type { DecisionEventV1 } from './types.js';
import { defaultRequestSettings } from '../config/load.js';
import { testCompileOptions } from '../../test/helpers/compile-options.js';

const options: CompileOptions = testCompileOptions({ namespace: 'shop', labels: { app: 'api' }, serviceAccount: 'api' }, {
  pathNormalization: 'MERGE_SLASHES', linkerd: { clusterNetworks: ['10.0.0.0/8'] },
});

async function setup() {
  const key = await makeKey('ES256', 'k1');
  const r = compilePolicies([{ file: 'p.yaml', text: `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: shop}
spec:
  jwtRules:
  - issuer: https://issuer.example
    jwks: '${jwksJson(key)}'
    fromHeaders: [{name: x-id-token, prefix: "Token "}]
    fromParams: [access_token]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: orders, namespace: shop}
spec:
  rules:
  - to: [{operation: {paths: ["/orders/*"]}}]
    when: [{key: "request.auth.claims[role]", values: [admin]}]
` }], options);
  assert.ok(r.snapshot && r.diagnostics.length === 0, JSON.stringify(r.diagnostics));
  return { key, snapshot: r.snapshot };
}

async function run(snapshot: PolicySnapshot, target: string, headers: string[], capture?: CaptureSettings): Promise<DecisionEventV1> {
  const events: DecisionEventV1[] = [];
  const peer = parseSpiffeId('spiffe://cluster.local/ns/shop/sa/web');
  assert.ok(peer.ok);
  const deps: ProxyDeps = {
    mode: 'enforce', limits: defaultRequestSettings().limits, pathNormalization: 'MERGE_SLASHES', rejectEncodedSlashes: true,
    policies: { current: () => snapshot },
    credentials: { serverOptions: () => ({}), onChange: () => () => undefined, ownSpiffeId: () => 'spiffe://cluster.local/ns/shop/sa/api' },
    verifyPeer: () => ({ ok: false, reason: 'no_certificate', detail: '' }),
    jwtFor: (s) => createCheckAuthenticator(s, { now: () => Date.now() }),
    sink: { publish: (e) => events.push(e) },
    ...(capture ? { capture } : {}),
  };
  const { ex } = memoryExchange({
    conn: { listener: { name: 'inbound-8443', listen: { host: '127.0.0.1', port: 0 }, upstream: 'http://127.0.0.1:8080', mode: 'strict', workloadPort: 8080 }, tls: true, peer: toPeerIdentity(peer.id), peerCertHash: 'ab', sourceIp: '10.0.0.7', sourcePort: 5000, destinationIp: '10.0.0.9', sni: 'api.shop' },
    httpVersion: '1.1', method: 'GET', target, rawHeaders: ['Host', 'API.shop:8443', ...headers],
  });
  await handleRequest(ex, deps, recordingForwarder());
  assert.equal(events.length, 1);
  return events[0] as DecisionEventV1;
}

test('a replayable event records what policies test, with every credential value replaced by the marker', async () => {
  const { key, snapshot } = await setup();
  const token = await mint(key, { iss: 'https://issuer.example', sub: 'alice', role: 'admin', exp: Math.floor(Date.now() / 1000) + 600 });
  const e = await run(snapshot, '/orders//42?page=2&access_token=' + token + '&flag', [
    'Authorization', 'Basic c2VjcmV0', 'Cookie', 'session=s3cret; theme=dark', 'X-Id-Token', 'Token ' + token,
    'Proxy-Authorization', 'opaque-secret', 'User-Agent', 'curl/8', 'X-Api-Key', 'k-123',
  ]);
  assert.equal(e.capture, 'replayable');
  assert.equal(e.verdict, 'allow', 'one token in two places is one token');
  assert.equal(e.jwt?.sub, 'alice', JSON.stringify(e));
  const line = JSON.stringify(e);
  for (const secret of [token, 'c2VjcmV0', 's3cret', 'opaque-secret']) assert.ok(!line.includes(secret), `the log line must not contain ${secret}`);
  assert.equal(e.request.path, '/orders/42');
  assert.equal(e.request.raw_path, '/orders//42');
  assert.deepEqual(e.request.query_keys, ['page', 'access_token', 'flag']);
  assert.deepEqual(e.request.headers, {
    authorization: 'Basic [redacted]', cookie: 'session=[redacted]; theme=[redacted]', 'x-id-token': 'Token [redacted]',
    'proxy-authorization': '[redacted]', 'user-agent': 'curl/8', 'x-api-key': 'k-123',
  });
  assert.equal(e.request.destination_ip, '10.0.0.9');
  assert.equal(e.request.sni, 'api.shop');
  assert.equal(e.peer.remote_ip, undefined, 'written only when it differs from the peer ip');
});

test('the verified claims are recorded, the token never; a query-borne token keeps its parameter name', async () => {
  const { key, snapshot } = await setup();
  const claims = { iss: 'https://issuer.example', sub: 'alice', role: 'admin', exp: Math.floor(Date.now() / 1000) + 600 };
  const token = await mint(key, claims);
  const e = await run(snapshot, '/orders/42?access_token=' + token, ['X-Api-Key', 'k-123'], { mode: 'replayable', redactHeaders: ['x-api-key'] });
  assert.equal(e.verdict, 'allow');
  assert.deepEqual(e.jwt, { iss: 'https://issuer.example', sub: 'alice', claims });
  assert.deepEqual(e.request.query_keys, ['access_token']);
  assert.equal(e.request.raw_path, undefined, 'written only when it differs from the normalized path');
  assert.deepEqual(e.request.headers, { 'x-api-key': '[redacted]' });
  assert.ok(!JSON.stringify(e).includes(token));
});

test('minimal capture writes the v1 event as first shipped; a request refused before policy has nothing to replay', async () => {
  const { snapshot } = await setup();
  const minimal = await run(snapshot, '/orders/42', ['User-Agent', 'curl/8'], { mode: 'minimal', redactHeaders: [] });
  assert.equal(minimal.capture, undefined);
  assert.equal(minimal.request.headers, undefined);
  assert.equal(minimal.request.query_keys, undefined);
  const refused = await run(snapshot, '/a%2Fb', ['User-Agent', 'curl/8']);
  assert.equal(refused.verdict, 'bad_request');
  assert.equal(refused.capture, undefined);
});
