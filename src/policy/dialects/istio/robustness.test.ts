import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { JsonValue, PolicyDocument } from '../../documents-types.js';
import type { CompileOptions } from '../../ir.js';
import { istioDialect } from './index.js';
import { lowerIstioDocuments } from './lower.js';

const options: CompileOptions = {
  workload: { namespace: 'foo', labels: { app: 'a' }, annotations: {}, serviceAccount: 'a', trustDomain: 'cluster.local', trustDomainAliases: ['old'] },
  rootNamespace: 'istio-system', pathNormalization: 'BASE', customProviders: [],
  linkerd: { defaultPolicy: 'all-unauthenticated', clusterNetworks: [], probeNetworks: [], probePaths: {}, portNames: {}, controlPlaneNamespace: 'linkerd' },
};

function doc(kind: string, spec: JsonValue, annotations: Record<string, string> = {}): PolicyDocument {
  const origin = { file: 'fuzz.yaml', line: 1, column: 1 };
  return {
    apiVersion: 'security.istio.io/v1', kind,
    metadata: { name: 'p', namespace: 'foo', labels: {}, annotations, creationTimestamp: undefined },
    body: { apiVersion: 'security.istio.io/v1', kind, metadata: { name: 'p', namespace: 'foo' }, spec },
    origin, locate: () => origin,
  };
}

const word = fc.constantFrom('', '*', 'a*', '*a', 'a*b', 'GET', '/x/{*}', '/x/{**}', '10.0.0.0/8', '80', 'cluster.local/ns/foo/sa/a', 'foo/a', 'iss/sub', 'request.headers[x]', 'request.auth.claims[a][b]', 'source.ip', 'destination.port', 'x');
const strList = fc.array(word, { maxLength: 3 });
const source = fc.record({ principals: strList, notNamespaces: strList, requestPrincipals: strList, ipBlocks: strList, serviceAccounts: strList, trustDomains: strList }, { requiredKeys: [] });
const operation = fc.record({ hosts: strList, ports: strList, methods: strList, notPaths: strList, paths: strList }, { requiredKeys: [] });
const condition = fc.record({ key: word, values: strList, notValues: strList }, { requiredKeys: [] });
const rule = fc.record({
  from: fc.array(fc.record({ source }, { requiredKeys: [] }), { maxLength: 2 }),
  to: fc.array(fc.record({ operation }, { requiredKeys: [] }), { maxLength: 2 }),
  when: fc.array(condition, { maxLength: 2 }),
}, { requiredKeys: [] });
const spec = fc.record({
  action: fc.constantFrom('ALLOW', 'DENY', 'AUDIT', 'CUSTOM', 'bogus'),
  rules: fc.array(rule, { maxLength: 3 }),
  provider: fc.record({ name: word }),
}, { requiredKeys: [] });

test('validate and lower never throw, and lower always yields both chains for valid policies', () => {
  fc.assert(fc.property(spec, fc.anything(), (s, junk) => {
    const shaped = doc('AuthorizationPolicy', s as JsonValue);
    const diags = istioDialect.validate(shaped);
    istioDialect.validate(doc('AuthorizationPolicy', junk as JsonValue));
    istioDialect.validate(doc('RequestAuthentication', junk as JsonValue));
    if (diags.some((d) => d.severity === 'error')) return;
    const out = chains([shaped], options);
    assert.ok(out.output.istio);
    const http = out.output.istio.http;
    const tcp = out.output.istio.tcp;
    // TCP never gains ALLOW rules the HTTP chain lacks, and never loses DENY rules.
    assert.ok(tcp.allow.length <= http.allow.length);
    assert.equal(tcp.deny.length, http.deny.length);
  }), { numRuns: 300 });
});

/** The chains the dialect writes as tiers, with the contract's shape (`output`). */
function chains(docs: Parameters<typeof lowerIstioDocuments>[0], opts: Parameters<typeof lowerIstioDocuments>[1]) {
  const l = lowerIstioDocuments(docs, opts);
  return { diagnostics: l.diagnostics, output: { istio: l.istio, jwtProviders: l.jwtProviders.length > 0 ? l.jwtProviders : undefined, applied: l.applied } };
}
