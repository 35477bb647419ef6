// Property test: random Admin and Baseline ClusterNetworkPolicies (priorities, Accept/Deny/Pass, namespace peers,
// ports) with or without an isolating NetworkPolicy, decided by the compiled program, agree with the evaluation
// order the API defines (Admin by priority -> NetworkPolicy -> Baseline -> allow).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { compilePolicies } from '../../compile.js';
import type { RequestContext } from '../../context-types.js';
import { evaluate } from '../../evaluate.js';
import type { CompileOptions } from '../../ir.js';
import { testCompileOptions } from '../../../../test/helpers/compile-options.js';

const options: CompileOptions = testCompileOptions({ namespace: 'x', labels: { pod: 'a' }, serviceAccount: 'a' });

const NAMESPACES = ['x', 'y', 'z'];
const PORTS = [80, 8080];

interface Rule { action: 'Accept' | 'Deny' | 'Pass'; from: string[] | 'all'; port: number | null }
interface Cnp { name: string; tier: 'Admin' | 'Baseline'; priority: number; selects: boolean; rules: Rule[] }
interface Np { allowFrom: string[] }
interface Request { ns: string | null; port: number }

const rule: fc.Arbitrary<Rule> = fc.record({
  action: fc.constantFrom('Accept' as const, 'Deny' as const, 'Pass' as const),
  from: fc.oneof(fc.constant('all' as const), fc.subarray(NAMESPACES, { minLength: 1 })),
  port: fc.option(fc.constantFrom(...PORTS), { nil: null }),
});
const cnp: fc.Arbitrary<Omit<Cnp, 'name'>> = fc.record({
  tier: fc.constantFrom('Admin' as const, 'Baseline' as const),
  priority: fc.integer({ min: 0, max: 3 }),
  selects: fc.boolean(),
  rules: fc.array(rule, { minLength: 1, maxLength: 3 }),
});
const np: fc.Arbitrary<Np | null> = fc.option(fc.record({ allowFrom: fc.subarray(NAMESPACES) }), { nil: null });
const request: fc.Arbitrary<Request> = fc.record({ ns: fc.option(fc.constantFrom(...NAMESPACES), { nil: null }), port: fc.constantFrom(...PORTS) });

const nsPeer = (from: string[] | 'all') => (from === 'all' ? {} : { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: from }] });

function toYaml(c: Cnp): string {
  return stringify({
    apiVersion: 'policy.networking.k8s.io/v1alpha2', kind: 'ClusterNetworkPolicy', metadata: { name: c.name },
    spec: {
      tier: c.tier, priority: c.priority,
      subject: { namespaces: { matchLabels: { 'kubernetes.io/metadata.name': c.selects ? 'x' : 'elsewhere' } } },
      ingress: c.rules.map((r) => ({
        action: r.action, from: [{ namespaces: nsPeer(r.from) }],
        ...(r.port === null ? {} : { protocols: [{ tcp: { destinationPort: { number: r.port } } }] }),
      })),
    },
  });
}

function npYaml(n: Np): string {
  return stringify({
    apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'np', namespace: 'x' },
    spec: { podSelector: {}, ingress: n.allowFrom.length ? [{ from: [{ namespaceSelector: nsPeer(n.allowFrom) }] }] : [] },
  });
}

const ruleMatches = (r: Rule, q: Request): boolean => q.ns !== null && (r.from === 'all' || r.from.includes(q.ns)) && (r.port === null || r.port === q.port);

/** The API's evaluation order, written out directly. */
function reference(cnps: Cnp[], n: Np | null, q: Request): boolean {
  const tierOf = (t: Cnp['tier']) => cnps.filter((c) => c.tier === t && c.selects)
    .sort((a, b) => a.priority - b.priority || (a.name < b.name ? -1 : 1));
  const walk = (policies: Cnp[]): 'allow' | 'deny' | 'pass' => {
    for (const c of policies) {
      for (const r of c.rules) {
        if (!ruleMatches(r, q)) continue;
        return r.action === 'Accept' ? 'allow' : r.action === 'Deny' ? 'deny' : 'pass';
      }
    }
    return 'pass';
  };
  const admin = walk(tierOf('Admin'));
  if (admin !== 'pass') return admin === 'allow';
  if (n !== null) return q.ns !== null && n.allowFrom.includes(q.ns);
  return walk(tierOf('Baseline')) !== 'deny';
}

function ctx(q: Request): RequestContext {
  const spiffeId = q.ns === null ? null : `spiffe://cluster.local/ns/${q.ns}/sa/client`;
  return {
    protocol: 'http', method: 'GET', path: '/', query: '', authority: 'a', host: 'a', headers: {},
    peer: spiffeId === null ? null : { spiffeId, principal: spiffeId.slice('spiffe://'.length), trustDomain: 'cluster.local', namespace: q.ns ?? undefined, serviceAccount: 'client' },
    sourceIp: '10.0.0.1', remoteIp: '10.0.0.1', destinationIp: undefined, port: q.port, sni: undefined, jwt: null,
  } as RequestContext;
}

test('Admin -> NetworkPolicy -> Baseline -> allow agrees with the API evaluation order', () => {
  fc.assert(fc.property(fc.array(cnp, { maxLength: 4 }), np, fc.array(request, { minLength: 1, maxLength: 8 }), (raw, n, requests) => {
    const cnps: Cnp[] = raw.map((c, i) => ({ ...c, name: `c${i}` }));
    const text = [...cnps.map(toYaml), ...(n ? [npYaml(n)] : [])].join('---\n');
    const result = compilePolicies([{ file: 'p.yaml', text }], options);
    const snapshot = result.snapshot;
    assert.ok(snapshot, JSON.stringify(result.diagnostics.filter((d) => d.severity === 'error')));
    for (const q of requests) {
      const verdict: string = evaluate(snapshot, ctx(q)).verdict;
      assert.equal(verdict === 'allow', reference(cnps, n, q), `${JSON.stringify(q)} with\n${text}`);
    }
  }), { numRuns: 120 });
});
