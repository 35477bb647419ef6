import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compilePolicies } from '../../compile.js';
import { buildRequestContext } from '../../context.js';
import { evaluate } from '../../evaluate.js';
import { defaultCompileOptions } from '../../../config/load.js';
import type { PolicySnapshot } from '../../snapshot.js';

const policies = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin, namespace: foo}
spec:
  action: DENY
  rules:
  - to: [{operation: {paths: ["/admin", "/internal/*", "/api/{*}/secret"]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-all-but-public, namespace: foo}
spec:
  action: DENY
  rules:
  - to: [{operation: {notPaths: ["/public/*", "/admin", "/internal/*", "/api/*", "/Admin", "/ADMIN", "/INTERNAL/*"]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-public, namespace: foo}
spec:
  rules:
  - to: [{operation: {paths: ["/public/*", "/admin", "/Admin", "/ADMIN", "/internal/*", "/INTERNAL/*", "/api/*"]}}]
`;

function compile(denyPathsIgnoreCase: boolean): PolicySnapshot {
  const options = defaultCompileOptions();
  options.workload.namespace = 'foo';
  options.denyPathsIgnoreCase = denyPathsIgnoreCase;
  const { snapshot, diagnostics } = compilePolicies([{ file: 'p.yaml', text: policies }], options);
  assert.ok(snapshot, JSON.stringify(diagnostics));
  return snapshot;
}

function decide(snapshot: PolicySnapshot, path: string): string {
  const built = buildRequestContext(
    { protocol: 'http', method: 'GET', path, host: 'api.foo', headers: {}, peer: null, sourceIp: '10.0.0.1', port: 8080, jwt: null },
    { pathNormalization: 'MERGE_SLASHES', rejectEncodedSlashes: false },
  );
  assert.ok(built.ok);
  const d = evaluate(snapshot, built.context);
  return `${d.verdict}${d.policy ? ` ${d.policy.name}` : ''}`;
}

test('PC-4 off (default): DENY paths are case-sensitive, as in Istio', () => {
  const s = compile(false);
  assert.equal(decide(s, '/admin'), 'deny deny-admin');
  assert.equal(decide(s, '/Admin'), 'allow allow-public');
  assert.equal(decide(s, '/INTERNAL/x'), 'allow allow-public');
});

test('PC-4 on: positive DENY paths (exact, prefix, template) match in any case; notPaths and ALLOW keep their case', () => {
  const s = compile(true);
  assert.equal(decide(s, '/admin'), 'deny deny-admin');
  assert.equal(decide(s, '/Admin'), 'deny deny-admin');
  assert.equal(decide(s, '/ADMIN'), 'deny deny-admin');
  assert.equal(decide(s, '/INTERNAL/x'), 'deny deny-admin');
  assert.equal(decide(s, '/api/v1/SECRET'), 'deny deny-admin');
  assert.equal(decide(s, '/API/v1/Secret'), 'deny deny-admin');
  // The notPaths DENY stays case-sensitive (ignoring case there would narrow it): /PUBLIC/x is not excluded.
  assert.equal(decide(s, '/PUBLIC/x'), 'deny deny-all-but-public');
  // ALLOW paths stay case-sensitive: an allow is never widened.
  assert.equal(decide(s, '/public/x'), 'allow allow-public');
  assert.equal(decide(s, '/api/v1/other'), 'allow allow-public');
});
