import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePolicySources } from '../../documents.js';
import { istioDialect } from './index.js';

function validate(yaml: string) {
  const parsed = parsePolicySources([{ file: 'p.yaml', text: yaml }]);
  assert.deepEqual(parsed.diagnostics, []);
  return parsed.documents.flatMap((d) => istioDialect.validate(d));
}

function codes(yaml: string): string[] {
  return validate(yaml).map((d) => `${d.severity}:${d.code}:${d.fieldPath}`);
}

const head = (kind = 'AuthorizationPolicy') => `apiVersion: security.istio.io/v1
kind: ${kind}
metadata: {name: p, namespace: foo}
`;

test('accepts the security.istio.io group only', () => {
  assert.equal(istioDialect.accepts('security.istio.io/v1', 'AuthorizationPolicy'), true);
  assert.equal(istioDialect.accepts('security.istio.io/v1beta1', 'RequestAuthentication'), true);
  assert.equal(istioDialect.accepts('policy.linkerd.io/v1alpha1', 'AuthorizationPolicy'), false);
});

test('a valid policy has no diagnostics', () => {
  assert.deepEqual(codes(head() + `spec:
  selector: {matchLabels: {app: httpbin}}
  action: ALLOW
  rules:
  - from: [{source: {principals: ["cluster.local/ns/foo/sa/sleep"]}}]
    to: [{operation: {methods: ["GET"], paths: ["/info*", "/api/{*}/x/{**}"], ports: ["8000"]}}]
    when: [{key: "request.auth.claims[groups]", values: ["group1"]}]
`), []);
});

test('unknown fields are errors with a suggestion and a location', () => {
  const ds = validate(head() + `spec:
  rules:
  - from:
    - source:
        principal: ["cluster.local/ns/foo/sa/sleep"]
  actions: DENY
`);
  const unknown = ds.filter((d) => d.code === 'PRT_ISTIO_UNKNOWN_FIELD');
  assert.deepEqual(unknown.map((d) => d.fieldPath), ['spec.rules[0].from[0].source.principal', 'spec.actions']);
  assert.match(unknown[0]?.message ?? '', /did you mean "principals"/);
  assert.equal(unknown[0]?.origin.line, 8);
  assert.equal(unknown[0]?.origin.column, 9);
  // the source now has no known field: also empty
  assert.ok(ds.some((d) => d.code === 'PRT_ISTIO_EMPTY_SOURCE'));
});

test('wrong types: numeric ports, string instead of list', () => {
  assert.deepEqual(codes(head() + `spec:
  rules:
  - to: [{operation: {ports: [8080], methods: GET}}]
`), ['error:PRT_ISTIO_WRONG_TYPE:spec.rules[0].to[0].operation.ports[0]', 'error:PRT_ISTIO_WRONG_TYPE:spec.rules[0].to[0].operation.methods', 'error:PRT_ISTIO_EMPTY_OPERATION:spec.rules[0].to[0].operation']);
});

test('empty lists, empty objects, empty strings, missing source', () => {
  assert.deepEqual(codes(head() + `spec:
  rules:
  - from: []
    to: [{operation: {}}]
  - from: [{}]
    to: [{operation: {paths: [""]}}]
`), [
    'error:PRT_ISTIO_EMPTY_LIST:spec.rules[0].from',
    'error:PRT_ISTIO_EMPTY_OPERATION:spec.rules[0].to[0].operation',
    'error:PRT_ISTIO_MISSING_FIELD:spec.rules[1].from[0]',
    'error:PRT_ISTIO_EMPTY_STRING:spec.rules[1].to[0].operation.paths[0]',
  ]);
});

test('DENY/CUSTOM without rules, provider rules, bad action', () => {
  assert.deepEqual(codes(head() + 'spec: {action: DENY}\n'), ['error:PRT_ISTIO_NO_RULES:spec']);
  assert.deepEqual(codes(head() + 'spec: {action: CUSTOM, rules: [{}]}\n'), ['error:PRT_ISTIO_CUSTOM_NO_PROVIDER:spec.provider']);
  assert.deepEqual(codes(head() + 'spec: {action: ALLOW, provider: {name: x}}\n'), ['error:PRT_ISTIO_PROVIDER_NOT_CUSTOM:spec.provider']);
  assert.deepEqual(codes(head() + 'spec: {action: Deny, rules: [{}]}\n'), ['error:PRT_ISTIO_BAD_ACTION:spec.action']);
  assert.deepEqual(codes(head() + 'spec: {}\n'), []);
});

test('selector with targetRef', () => {
  assert.deepEqual(codes(head() + `spec:
  selector: {matchLabels: {app: a}}
  targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: gw}]
`), ['error:PRT_ISTIO_SELECTOR_WITH_TARGETREF:spec.selector']);
});

test('ports, IPs, CIDRs', () => {
  assert.deepEqual(codes(head() + `spec:
  rules:
  - from: [{source: {ipBlocks: ["10.0.0.0/8", "1.2.3.4", "::1", "2001:db8::/32", "10.0.0.256", "10.0.0.0/33", "010.1.1.1", "fe80::1%eth0"]}}]
    to: [{operation: {ports: ["0", "65535", "65536", "-1", "http", "80 "]}}]
    when: [{key: destination.port, values: ["8x"]}, {key: remote.ip, notValues: ["abc"]}]
`), [
    'error:PRT_ISTIO_BAD_IP:spec.rules[0].from[0].source.ipBlocks[4]',
    'error:PRT_ISTIO_BAD_IP:spec.rules[0].from[0].source.ipBlocks[5]',
    'error:PRT_ISTIO_BAD_IP:spec.rules[0].from[0].source.ipBlocks[6]',
    'error:PRT_ISTIO_BAD_IP:spec.rules[0].from[0].source.ipBlocks[7]',
    'error:PRT_ISTIO_BAD_PORT:spec.rules[0].to[0].operation.ports[2]',
    'error:PRT_ISTIO_BAD_PORT:spec.rules[0].to[0].operation.ports[3]',
    'error:PRT_ISTIO_BAD_PORT:spec.rules[0].to[0].operation.ports[4]',
    'error:PRT_ISTIO_BAD_PORT:spec.rules[0].to[0].operation.ports[5]',
    'error:PRT_ISTIO_BAD_PORT:spec.rules[0].when[0].values[0]',
    'error:PRT_ISTIO_BAD_IP:spec.rules[0].when[1].notValues[0]',
  ]);
});

test('path templates', () => {
  const bad = ['/a/{*}b', '/a/{**}/{*}', '/a/{**}/{**}', '/a/{id}', '/a/*/{*}', '/a//{*}', '/{***}'];
  const good = ['/a/{*}', '/a/{**}', '/store/{**}/cart', '/foo/{*}/bar/{**}', '/{*}/x', '/api/*/admin'];
  for (const p of bad) {
    assert.deepEqual(codes(head() + `spec:\n  rules: [{to: [{operation: {paths: ["${p}"]}}]}]\n`), ['error:PRT_ISTIO_BAD_PATH_TEMPLATE:spec.rules[0].to[0].operation.paths[0]'], p);
  }
  for (const p of good) {
    assert.deepEqual(codes(head() + `spec:\n  rules: [{to: [{operation: {paths: ["${p}"]}}]}]\n`).filter((c) => c.startsWith('error')), [], p);
  }
});

test('when keys: unknown, removed, no values', () => {
  assert.deepEqual(codes(head() + `spec:
  rules:
  - when:
    - {key: "request.header[x]", values: [a]}
    - {key: "destination.labels[app]", values: [a]}
    - {key: source.namespace}
    - {key: "request.auth.claims[]", values: [a]}
    - {key: "request.auth.claims[a][b]", values: [x]}
    - {key: "experimental.envoy.filters.network.mysql_proxy[db.table]", values: ["[update]"]}
`), [
    'error:PRT_ISTIO_UNKNOWN_CONDITION_KEY:spec.rules[0].when[0].key',
    'error:PRT_ISTIO_REMOVED_CONDITION_KEY:spec.rules[0].when[1].key',
    'error:PRT_ISTIO_CONDITION_NO_VALUES:spec.rules[0].when[2]',
    'error:PRT_ISTIO_UNKNOWN_CONDITION_KEY:spec.rules[0].when[3].key',
    'warning:PRT_ISTIO_UNSUPPORTED_KEY:spec.rules[0].when[5].key',
  ]);
});

test('serviceAccounts and trustDomains rules', () => {
  const many = Array.from({ length: 17 }, (_, i) => `sa${i}`).join(', ');
  assert.deepEqual(codes(head() + `spec:
  rules:
  - from:
    - source: {serviceAccounts: ["foo/*", "a/b/c", "/x", "ok", "ns/ok"]}
    - source: {serviceAccounts: [${many}]}
    - source: {serviceAccounts: [a], principals: ["x"]}
    - source: {trustDomains: ["a*b", "*.example.org", "td*"]}
`), [
    'error:PRT_ISTIO_BAD_SERVICE_ACCOUNT:spec.rules[0].from[0].source.serviceAccounts[0]',
    'error:PRT_ISTIO_BAD_SERVICE_ACCOUNT:spec.rules[0].from[0].source.serviceAccounts[1]',
    'error:PRT_ISTIO_BAD_SERVICE_ACCOUNT:spec.rules[0].from[0].source.serviceAccounts[2]',
    'error:PRT_ISTIO_TOO_MANY_SERVICE_ACCOUNTS:spec.rules[0].from[1].source.serviceAccounts',
    'error:PRT_ISTIO_SERVICE_ACCOUNTS_CONFLICT:spec.rules[0].from[2].source',
    'error:PRT_ISTIO_BAD_TRUST_DOMAIN:spec.rules[0].from[3].source.trustDomains[0]',
  ]);
});

test('dry-run annotation: ParseBool, unparsable is a warning', () => {
  const doc = (v: string) => `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: p, namespace: foo, annotations: {"istio.io/dry-run": "${v}"}}
spec: {}
`;
  for (const v of ['true', 'TRUE', '1', 't', 'false', 'F', '0']) assert.deepEqual(codes(doc(v)), [], v);
  assert.deepEqual(codes(doc('yes')), ['warning:PRT_ISTIO_BAD_DRY_RUN:metadata.annotations[istio.io/dry-run]']);
});

test('warnings: DENY with only HTTP fields, ALLOW with negative identity, spiffe prefix, literal star', () => {
  assert.deepEqual(codes(head() + `spec:
  action: DENY
  rules:
  - to: [{operation: {methods: ["GET"]}}]
  - to: [{operation: {methods: ["GET"], ports: ["80"]}}]
`), ['warning:PRT_ISTIO_HTTP_ONLY_ON_TCP:spec.rules[0]']);
  assert.deepEqual(codes(head() + `spec:
  rules:
  - from: [{source: {notPrincipals: ["spiffe://cluster.local/ns/foo/sa/x"]}}]
    to: [{operation: {paths: ["/api/*/admin"], methods: ["get"]}}]
`), [
    'warning:PRT_ISTIO_SPIFFE_PREFIX:spec.rules[0].from[0].source.notPrincipals[0]',
    'warning:PRT_ISTIO_LITERAL_STAR:spec.rules[0].to[0].operation.paths[0]',
    'warning:PRT_ISTIO_METHOD_CASE:spec.rules[0].to[0].operation.methods[0]',
    'warning:PRT_ISTIO_ALLOW_NEGATIVE_SOURCE:spec.rules[0].from[0].source.notPrincipals',
  ]);
});

test('RequestAuthentication rules', () => {
  assert.deepEqual(codes(head('RequestAuthentication') + `spec:
  jwtRules:
  - issuer: a
    jwksUri: https://example.com/jwks.json
    timeout: 10s
  - jwksUri: https://example.com/jwks.json
  - audiences: [x]
  - issuer: b
    jwks: '{"keys": [{"kty": "RSA"}]}'
    jwksUri: https://example.com/jwks.json
  - issuer: c
    jwks: 'not json'
  - issuer: d
    jwksUri: http://example.com/jwks.json
    fromHeaders: [{prefix: "Bearer "}, {name: "bad header"}]
    outputClaimToHeaders: [{header: x-a}, {header: x-b, claim: b}, {header: X-B, claim: c}]
    outputPayloadToHeader: "x y"
    timeout: 5 seconds
    forwardOriginalToken: "yes"
`), [
    'error:PRT_ISTIO_WRONG_TYPE:spec.jwtRules[5].forwardOriginalToken',
    'error:PRT_ISTIO_JWT_NO_ISSUER:spec.jwtRules[2].issuer',
    'error:PRT_ISTIO_JWT_JWKS_CONFLICT:spec.jwtRules[3].jwks',
    'error:PRT_ISTIO_JWT_BAD_JWKS:spec.jwtRules[4].jwks',
    'error:PRT_ISTIO_JWT_BAD_JWKS_URI:spec.jwtRules[5].jwksUri',
    'error:PRT_ISTIO_JWT_HEADER_NAME_REQUIRED:spec.jwtRules[5].fromHeaders[0]',
    'error:PRT_ISTIO_BAD_HEADER_NAME:spec.jwtRules[5].fromHeaders[1].name',
    'error:PRT_ISTIO_BAD_HEADER_NAME:spec.jwtRules[5].outputPayloadToHeader',
    'error:PRT_ISTIO_JWT_CLAIM_TO_HEADER_INCOMPLETE:spec.jwtRules[5].outputClaimToHeaders[0]',
    'error:PRT_ISTIO_JWT_DUPLICATE_HEADER:spec.jwtRules[5].outputClaimToHeaders[2].header',
    'error:PRT_ISTIO_JWT_BAD_TIMEOUT:spec.jwtRules[5].timeout',
  ]);
});

test('unknown kinds and versions of the group are errors; PeerAuthentication is ignored with a warning', () => {
  assert.deepEqual(codes('apiVersion: security.istio.io/v1\nkind: AuthorisationPolicy\nmetadata: {name: p, namespace: foo}\n'), ['error:PRT_ISTIO_UNKNOWN_KIND:kind']);
  assert.deepEqual(codes('apiVersion: security.istio.io/v2\nkind: AuthorizationPolicy\nmetadata: {name: p, namespace: foo}\n'), ['error:PRT_ISTIO_UNSUPPORTED_VERSION:apiVersion']);
  assert.deepEqual(codes('apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: p, namespace: foo}\nspec: {mtls: {mode: STRICT}}\n'), ['warning:PRT_ISTIO_NOT_ENFORCED:kind']);
});

test('every problem is reported, not just the first', () => {
  const ds = validate(head() + `spec:
  action: DENY
  rules:
  - from: [{source: {principal: [a]}}]
    to: [{operation: {ports: ["x"]}}]
    when: [{key: foo, values: [a]}]
`);
  assert.ok(ds.filter((d) => d.severity === 'error').length >= 4);
});
