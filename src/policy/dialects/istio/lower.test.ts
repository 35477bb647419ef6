import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePolicySources } from '../../documents.js';
import type { CompileOptions, Matcher } from '../../ir.js';
import { istioDialect } from './index.js';
import { lowerIstioDocuments } from './lower.js';
import { expandTrustDomains } from './rules.js';

function options(over: Partial<CompileOptions['workload']> = {}, rootNamespace = 'istio-system'): CompileOptions {
  return {
    workload: { namespace: 'foo', labels: { app: 'httpbin', version: 'v1' }, annotations: {}, serviceAccount: 'httpbin', trustDomain: 'cluster.local', trustDomainAliases: [], ...over },
    rootNamespace, pathNormalization: 'BASE', customProviders: [],
    linkerd: { defaultPolicy: 'all-unauthenticated', clusterNetworks: [], probeNetworks: [], probePaths: {}, portNames: {}, controlPlaneNamespace: 'linkerd' },
  };
}

function lower(yaml: string, opts = options()) {
  const parsed = parsePolicySources([{ file: 'p.yaml', text: yaml }]);
  assert.deepEqual(parsed.diagnostics, []);
  const errors = parsed.documents.flatMap((d) => istioDialect.validate(d)).filter((d) => d.severity === 'error');
  assert.deepEqual(errors, []);
  return chains(parsed.documents, opts);
}

const ap = (name: string, ns: string, spec: string, extraMeta = '') => `---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ${name}, namespace: ${ns}${extraMeta}}
spec:
${spec}
`;

function only(yaml: string, opts = options(), chain: 'http' | 'tcp' = 'http'): Matcher {
  const out = lower(yaml, opts).output.istio;
  assert.ok(out);
  const rules = [...out[chain].allow, ...out[chain].deny, ...out[chain].audit, ...out[chain].custom];
  assert.equal(rules.length, 1);
  return rules[0]!.match;
}

test('rule algebra: OR(from) AND OR(to) AND AND(when); fields ANDed; notX = not(or)', () => {
  const m = only(ap('p', 'foo', `  rules:
  - from:
    - source: {principals: ["cluster.local/ns/foo/sa/sleep"], notNamespaces: ["bar", "baz"]}
    - source: {ipBlocks: ["10.0.0.0/8", "::1"]}
    to:
    - operation: {methods: ["GET", "HEAD"], paths: ["/info*"]}
    when:
    - key: request.headers[X-Token]
      values: ["a", "b*"]
    - key: request.auth.claims[groups]
      notValues: ["admin"]`));
  assert.deepEqual(m, {
    type: 'and', of: [
      { type: 'or', of: [
        { type: 'and', of: [
          { type: 'peer.principal', match: { kind: 'exact', value: 'cluster.local/ns/foo/sa/sleep' } },
          { type: 'not', of: { type: 'or', of: [
            { type: 'peer.principal', match: { kind: 'regex', pattern: '.*/ns/bar/.*' } },
            { type: 'peer.principal', match: { kind: 'regex', pattern: '.*/ns/baz/.*' } },
          ] } },
        ] },
        { type: 'source.ip', cidrs: ['10.0.0.0/8', '::1'] },
      ] },
      { type: 'and', of: [
        { type: 'or', of: [
          { type: 'request.method', match: { kind: 'exact', value: 'GET' } },
          { type: 'request.method', match: { kind: 'exact', value: 'HEAD' } },
        ] },
        { type: 'request.path', match: { kind: 'prefix', value: '/info' } },
      ] },
      { type: 'or', of: [
        { type: 'request.header', name: 'x-token', match: { kind: 'exact', value: 'a' }, elements: 'all' },
        { type: 'request.header', name: 'x-token', match: { kind: 'prefix', value: 'b' }, elements: 'all' },
      ] },
      { type: 'not', of: { type: 'jwt.claim', path: ['groups'], match: { kind: 'exact', value: 'admin' } } },
    ],
  });
});

test('string forms: exact, prefix, suffix, presence, literal mid-star; hosts lower-cased', () => {
  const m = only(ap('p', 'foo', `  rules:
  - to:
    - operation: {hosts: ["HttpBin.foo:8000", "*.example.com", "*"], paths: ["/api/*/admin", "*.png"]}`));
  assert.deepEqual(m, { type: 'and', of: [
    { type: 'or', of: [
      { type: 'request.host', match: { kind: 'exact', value: 'httpbin.foo:8000', ignoreCase: true } },
      { type: 'request.host', match: { kind: 'suffix', value: '.example.com', ignoreCase: true } },
      { type: 'request.host', match: { kind: 'present' } },
    ] },
    { type: 'or', of: [
      { type: 'request.path', match: { kind: 'exact', value: '/api/*/admin' } },
      { type: 'request.path', match: { kind: 'suffix', value: '.png' } },
    ] },
  ] });
});

test('path templates lower to template segments', () => {
  const m = only(ap('p', 'foo', `  rules:
  - to: [{operation: {paths: ["/foo/{*}/bar/{**}"]}}]`));
  assert.deepEqual(m, { type: 'request.path', match: { kind: 'template', segments: [
    { kind: 'literal', value: 'foo' }, { kind: 'one' }, { kind: 'literal', value: 'bar' }, { kind: 'many' },
  ] } });
});

test('namespaces regex: * becomes .*, dots escaped', () => {
  const m = only(ap('p', 'foo', `  rules:
  - from: [{source: {namespaces: ["prod-*", "a.b"]}}]`));
  assert.deepEqual(m, { type: 'or', of: [
    { type: 'peer.principal', match: { kind: 'regex', pattern: '.*/ns/prod-.*/.*' } },
    { type: 'peer.principal', match: { kind: 'regex', pattern: '.*/ns/a\\.b/.*' } },
  ] });
});

test('serviceAccounts regex with the policy namespace and escaped dots', () => {
  const m = only(ap('p', 'foo', `  rules:
  - from: [{source: {serviceAccounts: ["sleep", "other/my.sa"]}}]`));
  assert.deepEqual(m, { type: 'or', of: [
    { type: 'peer.principal', match: { kind: 'regex', pattern: '.+/ns/foo/(.+/|)sa/sleep(/.+)?' } },
    { type: 'peer.principal', match: { kind: 'regex', pattern: '.+/ns/other/(.+/|)sa/my\\.sa(/.+)?' } },
  ] });
});

test('requestPrincipals: split at the last /', () => {
  const m = only(ap('p', 'foo', `  rules:
  - from: [{source: {requestPrincipals: ["*", "https://issuer.example/path/sub1", "iss/*", "*x/sub", "*suffix"]}}]`));
  assert.deepEqual(m, { type: 'or', of: [
    { type: 'jwt.principal', issuer: { kind: 'present' }, subject: { kind: 'present' } },
    { type: 'jwt.principal', issuer: { kind: 'exact', value: 'https://issuer.example/path' }, subject: { kind: 'exact', value: 'sub1' } },
    { type: 'jwt.principal', issuer: { kind: 'exact', value: 'iss' }, subject: { kind: 'present' } },
    { type: 'jwt.principal', issuer: { kind: 'suffix', value: 'x' }, subject: { kind: 'exact', value: 'sub' } },
    { type: 'jwt.principal', issuer: { kind: 'regex', pattern: '.*' }, subject: { kind: 'suffix', value: 'suffix' } },
  ] });
});

test('when keys: claims paths, audiences, presenter, ips, port, sni, trust domain, experimental', () => {
  const m = only(ap('p', 'foo', `  action: DENY
  rules:
  - when:
    - {key: "request.auth.claims[foo.com/name][sub]", values: ["a"]}
    - {key: request.auth.audiences, values: ["aud1"]}
    - {key: request.auth.presenter, values: ["azp1"]}
    - {key: source.ip, values: ["10.0.0.1"]}
    - {key: destination.port, values: ["8080", "9090"]}
    - {key: connection.sni, values: ["*.example.com"]}
    - {key: source.trustDomain, values: ["td.example"]}
    - {key: "experimental.envoy.filters.network.mysql_proxy[db.table]", values: ["[update]"]}`));
  assert.deepEqual(m, { type: 'and', of: [
    { type: 'jwt.claim', path: ['foo.com/name', 'sub'], match: { kind: 'exact', value: 'a' } },
    { type: 'jwt.claim', path: ['aud'], match: { kind: 'exact', value: 'aud1' } },
    { type: 'jwt.claim', path: ['azp'], match: { kind: 'exact', value: 'azp1' } },
    { type: 'source.ip', cidrs: ['10.0.0.1'] },
    { type: 'or', of: [{ type: 'destination.port', ports: [8080] }, { type: 'destination.port', ports: [9090] }] },
    { type: 'connection.sni', match: { kind: 'suffix', value: '.example.com' } },
    { type: 'peer.principal', match: { kind: 'regex', pattern: 'td\\.example(/.*)?' } },
    { type: 'unsupported', key: 'experimental.envoy.filters.network.mysql_proxy[db.table]' },
  ] });
});

test('trust domain aliases and the cluster.local rewrite', () => {
  const tds = ['example.org', 'old.org'];
  assert.deepEqual(expandTrustDomains('cluster.local/ns/foo/sa/a', tds), ['example.org/ns/foo/sa/a', 'old.org/ns/foo/sa/a']);
  assert.deepEqual(expandTrustDomains('old.org/ns/foo/sa/a', tds), ['example.org/ns/foo/sa/a', 'old.org/ns/foo/sa/a']);
  assert.deepEqual(expandTrustDomains('other.org/ns/foo/sa/a', tds), ['other.org/ns/foo/sa/a']);
  assert.deepEqual(expandTrustDomains('*/ns/foo/sa/a', tds), ['*/ns/foo/sa/a']);
  assert.deepEqual(expandTrustDomains('*', tds), ['*']);
  const m = only(ap('p', 'foo', `  rules:
  - from: [{source: {principals: ["cluster.local/ns/foo/sa/a"]}}]`), options({ trustDomain: 'example.org', trustDomainAliases: ['old.org'] }));
  assert.deepEqual(m, { type: 'or', of: [
    { type: 'peer.principal', match: { kind: 'exact', value: 'example.org/ns/foo/sa/a' } },
    { type: 'peer.principal', match: { kind: 'exact', value: 'old.org/ns/foo/sa/a' } },
  ] });
});

test('scope: root + workload namespace, selector subset, targetRefs ignored with info', () => {
  const yaml = ap('root', 'istio-system', '  action: DENY\n  rules: [{}]')
    + ap('other-ns', 'bar', '  action: DENY\n  rules: [{}]')
    + ap('selected', 'foo', '  selector: {matchLabels: {app: httpbin}}\n  action: DENY\n  rules: [{}]')
    + ap('not-selected', 'foo', '  selector: {matchLabels: {app: httpbin, version: v2}}\n  action: DENY\n  rules: [{}]')
    + ap('gateway', 'foo', '  targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: gw}]\n  action: DENY\n  rules: [{}]');
  const out = lower(yaml);
  assert.deepEqual(out.output.istio?.http.deny.map((r) => r.id), ['ns[foo]-policy[selected]-rule[0]', 'ns[istio-system]-policy[root]-rule[0]']);
  assert.deepEqual([...out.output.applied].map((d) => d.metadata.name), ['root', 'selected']);
  assert.deepEqual(out.diagnostics.map((d) => `${d.severity}:${d.code}:${d.fieldPath}`), ['info:PRT_ISTIO_TARGETREF_IGNORED:spec.targetRefs']);
  assert.equal(lower(ap('x', 'bar', '  action: DENY\n  rules: [{}]')).output.istio, undefined);
});

test('ALLOW without rules is allow-nothing; rules: [{}] matches any; dry-run goes to the shadow flag', () => {
  const out = lower(ap('nothing', 'foo', '  {}') + ap('shadow', 'foo', '  rules: [{}]', ', annotations: {"istio.io/dry-run": "true"}'));
  const http = out.output.istio!.http;
  assert.equal(http.hasEnforcedAllow, true);
  assert.equal(http.hasShadowAllow, true);
  assert.deepEqual(http.allow.map((r) => [r.id, r.dryRun, r.match.type]), [['ns[foo]-policy[shadow]-rule[0]', true, 'any']]);
  const bad = lower(ap('bad', 'foo', '  rules: [{}]', ', annotations: {"istio.io/dry-run": "maybe"}')).output.istio!.http;
  assert.equal(bad.hasEnforcedAllow, true);
  assert.equal(bad.allow[0]?.dryRun, false);
});

test('rule ids sort lexicographically like Envoy', () => {
  const rules = Array.from({ length: 11 }, () => '  - {}').join('\n');
  const out = lower(ap('b', 'foo', `  action: DENY\n  rules:\n${rules}`) + ap('a', 'foo', '  action: DENY\n  rules: [{}]'));
  const ids = out.output.istio!.http.deny.map((r) => r.id);
  assert.equal(ids[0], 'ns[foo]-policy[a]-rule[0]');
  assert.equal(ids[1], 'ns[foo]-policy[b]-rule[0]');
  // byte order: '0' (0x30) sorts before ']' (0x5d), so rule[10] precedes rule[1]
  assert.equal(ids[2], 'ns[foo]-policy[b]-rule[10]');
  assert.equal(ids[3], 'ns[foo]-policy[b]-rule[1]');
});

test('TCP: ALLOW rules with HTTP-only fields drop; DENY rules lose only the HTTP-only parts', () => {
  const out = lower(ap('allow', 'foo', `  rules:
  - to: [{operation: {methods: ["GET"], ports: ["9000"]}}]
  - to: [{operation: {ports: ["9001"]}}]`) + ap('deny', 'foo', `  action: DENY
  rules:
  - from: [{source: {requestPrincipals: ["*"]}}]
  - to: [{operation: {methods: ["GET"], ports: ["8000"]}}]
    when: [{key: "request.headers[x]", values: ["a"]}, {key: source.ip, values: ["10.0.0.0/8"]}]`));
  const tcp = out.output.istio!.tcp;
  assert.equal(tcp.hasEnforcedAllow, true);
  assert.deepEqual(tcp.allow.map((r) => [r.id, r.match]), [['ns[foo]-policy[allow]-rule[1]', { type: 'destination.port', ports: [9001] }]]);
  assert.deepEqual(tcp.deny.map((r) => [r.id, r.match]), [
    ['ns[foo]-policy[deny]-rule[0]', { type: 'any' }],
    ['ns[foo]-policy[deny]-rule[1]', { type: 'and', of: [{ type: 'destination.port', ports: [8000] }, { type: 'source.ip', cidrs: ['10.0.0.0/8'] }] }],
  ]);
  assert.equal(out.output.istio!.http.allow.length, 2);
});

test('CUSTOM rules carry the provider and warn when it is not configured', () => {
  const out = lower(ap('ext', 'foo', `  action: CUSTOM
  provider: {name: my-authz}
  rules: [{to: [{operation: {paths: ["/admin*"]}}]}]`));
  const rule = out.output.istio!.http.custom[0]!;
  assert.equal(rule.provider, 'my-authz');
  assert.deepEqual(out.diagnostics.map((d) => d.code), ['PRT_ISTIO_CUSTOM_PROVIDER_UNKNOWN']);
  assert.deepEqual(out.output.istio!.tcp.custom[0]?.match, { type: 'any' });
});

test('RequestAuthentication: merged root + workload ns, sorted by issuer, Istio defaults', () => {
  const ra = (name: string, ns: string, rules: string) => `---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: ${name}, namespace: ${ns}}
spec:
  jwtRules:
${rules}
`;
  const out = lower(ra('mesh', 'istio-system', '  - {issuer: z-issuer, jwksUri: "https://z.example/jwks"}')
    + ra('local', 'foo', `  - issuer: a-issuer
    jwks: '{"keys":[{"kty":"oct","k":"AAAA"}]}'
    fromHeaders: [{name: X-Jwt}]
    audiences: [aud1]
    timeout: 1m30s
    forwardOriginalToken: true
    outputClaimToHeaders: [{header: x-sub, claim: sub}]`)
    + ra('elsewhere', 'bar', '  - {issuer: b, jwksUri: "https://b.example/jwks"}'));
  const p = out.output.jwtProviders!;
  assert.deepEqual(p.map((x) => x.issuer), ['a-issuer', 'z-issuer']);
  assert.deepEqual(p[0], {
    policy: { dialect: 'istio', kind: 'RequestAuthentication', namespace: 'foo', name: 'local' },
    issuer: 'a-issuer', audiences: ['aud1'], jwks: { kind: 'inline', json: '{"keys":[{"kty":"oct","k":"AAAA"}]}' },
    fromHeaders: [{ name: 'x-jwt', prefix: '' }], fromParams: [], fromCookies: [], forwardOriginalToken: true,
    outputPayloadToHeader: undefined, outputClaimToHeaders: [{ header: 'x-sub', claim: 'sub' }], spaceDelimitedClaims: [], timeoutMs: 90000, requireExpiration: false,
  });
  assert.deepEqual(p[1]?.fromHeaders, [{ name: 'authorization', prefix: 'Bearer ' }]);
  assert.deepEqual(p[1]?.fromParams, ['access_token']);
  assert.equal(p[1]?.timeoutMs, 5000);
  assert.equal(out.output.istio, undefined, 'RequestAuthentication alone does not create an authorization program');
});

/** The chains the dialect writes as tiers, with the contract's shape (`output`). */
function chains(docs: Parameters<typeof lowerIstioDocuments>[0], opts: Parameters<typeof lowerIstioDocuments>[1]) {
  const l = lowerIstioDocuments(docs, opts);
  return { diagnostics: l.diagnostics, output: { istio: l.istio, jwtProviders: l.jwtProviders.length > 0 ? l.jwtProviders : undefined, applied: l.applied } };
}
