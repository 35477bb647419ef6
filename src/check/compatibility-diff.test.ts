import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compilePolicies } from '../policy/compile.js';
import { defaultCompileOptions } from '../config/load.js';
import { withCompatibility, type Compatibility } from '../policy/compatibility.js';
import { createCheckAuthenticator, decideRequest, type CheckRequest } from './decide.js';
import { compareWithIstioExact } from './compatibility-diff.js';

const sources = [{
  file: 'p.yaml',
  text: `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin, namespace: default}
spec:
  action: DENY
  rules:
  - to: [{operation: {paths: ["/admin*"], hosts: ["admin.api"]}}]
  - to: [{operation: {paths: ["/admin*"]}}]
`,
}];

async function compare(compatibility: Compatibility, request: CheckRequest) {
  const { snapshot } = compilePolicies(sources, withCompatibility(defaultCompileOptions(), compatibility));
  assert.ok(snapshot);
  const authenticator = createCheckAuthenticator(snapshot, { now: Date.now });
  const outcome = await decideRequest(snapshot, request, { authenticator });
  authenticator.close();
  return { outcome, compared: await compareWithIstioExact(sources, snapshot, request, outcome, Date.now, {}) };
}

const base: CheckRequest = { method: 'GET', host: 'api', peer: null, sourceIp: '10.0.0.1', port: 8080 };

test('explain names the secure setting that decided a deny Istio would allow', async () => {
  const { outcome, compared } = await compare('secure', { ...base, path: '/Admin/users' });
  assert.equal(outcome.verdict, 'deny');
  assert.ok(compared);
  assert.equal(compared.istioExact.verdict, 'allow');
  assert.deepEqual(compared.deciding.map((d) => d.setting), ['denyPathsIgnoreCase']);
});

test('explain names the encoded-slash 400', async () => {
  const { outcome, compared } = await compare('secure', { ...base, path: '/public/..%5Cadmin' });
  assert.equal(outcome.status, 400);
  assert.deepEqual(compared?.deciding.map((d) => d.setting), ['rejectEncodedSlashes']);
});

test('nothing to say when both settings agree, or under istio-exact', async () => {
  assert.equal((await compare('secure', { ...base, path: '/admin' })).compared, undefined);
  assert.equal((await compare('secure', { ...base, path: '/public' })).compared, undefined);
  assert.equal((await compare('istio-exact', { ...base, path: '/Admin' })).compared, undefined);
});
