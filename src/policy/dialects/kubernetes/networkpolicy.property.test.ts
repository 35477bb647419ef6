// Property test: random NetworkPolicy sets (isolation, policyTypes, namespace peers, ipBlocks with except,
// port numbers and ranges) decided by the compiled program agree with a naive reading of the API docs.
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

// The model: a tiny universe of namespaces, addresses and ports, so random policies and requests meet often.
const NAMESPACES = ['x', 'y', 'z'];
const BLOCKS = [{ cidr: '10.0.0.0/8', except: ['10.9.0.0/16'] }, { cidr: '10.9.0.0/16', except: [] }, { cidr: '192.168.0.0/16', except: ['192.168.1.0/24'] }];
const ADDRESSES = ['10.1.2.3', '10.9.1.1', '192.168.1.5', '192.168.2.5', '203.0.113.9'];
const PORTS = [80, 81, 8080, 9000];

type Peer = { kind: 'ns'; names: string[] } | { kind: 'block'; index: number };
type Port = { port: number; endPort?: number; protocol: 'TCP' | 'UDP' };
interface Rule { from: Peer[] | null; ports: Port[] | null }
interface Policy { name: string; namespace: string; selectsA: boolean; types: string[] | null; ingress: Rule[] | null; egress: boolean }
interface Request { ns: string | null; ip: string; port: number }

const peer: fc.Arbitrary<Peer> = fc.oneof(
  fc.record({ kind: fc.constant('ns' as const), names: fc.subarray(NAMESPACES, { minLength: 1 }) }),
  fc.record({ kind: fc.constant('block' as const), index: fc.nat({ max: BLOCKS.length - 1 }) }),
);
const port: fc.Arbitrary<Port> = fc.record(
  { port: fc.constantFrom(...PORTS), endPort: fc.option(fc.constantFrom(...PORTS), { nil: undefined }), protocol: fc.constantFrom('TCP' as const, 'UDP' as const) },
  { requiredKeys: ['port', 'protocol'] },
).map((p) => (p.endPort !== undefined && p.endPort < p.port ? { port: p.port, protocol: p.protocol } : p));
const rule: fc.Arbitrary<Rule> = fc.record({ from: fc.option(fc.array(peer, { maxLength: 3 }), { nil: null }), ports: fc.option(fc.array(port, { maxLength: 3 }), { nil: null }) });
const policy: fc.Arbitrary<Omit<Policy, 'name'>> = fc.record({
  namespace: fc.constantFrom('x', 'x', 'y'),
  selectsA: fc.boolean(),
  types: fc.option(fc.constantFrom(['Ingress'], ['Egress'], ['Ingress', 'Egress']), { nil: null }),
  ingress: fc.option(fc.array(rule, { maxLength: 3 }), { nil: null }),
  egress: fc.boolean(),
});
const request: fc.Arbitrary<Request> = fc.record({ ns: fc.option(fc.constantFrom(...NAMESPACES), { nil: null }), ip: fc.constantFrom(...ADDRESSES), port: fc.constantFrom(...PORTS) });

function toYaml(p: Policy): string {
  const spec: Record<string, unknown> = { podSelector: p.selectsA ? { matchLabels: { pod: 'a' } } : { matchLabels: { pod: 'b' } } };
  if (p.types) spec.policyTypes = p.types;
  if (p.ingress) {
    spec.ingress = p.ingress.map((r) => ({
      ...(r.from ? { from: r.from.map((f) => (f.kind === 'ns'
        ? { namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: f.names }] } }
        : { ipBlock: BLOCKS[f.index] })) } : {}),
      ...(r.ports ? { ports: r.ports } : {}),
    }));
  }
  if (p.egress) spec.egress = [{ ports: [{ port: 53, protocol: 'UDP' }] }];
  return stringify({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: p.name, namespace: p.namespace }, spec });
}

function inCidr(ip: string, cidr: string): boolean {
  const toInt = (a: string) => a.split('.').reduce((n, o) => n * 256 + Number(o), 0);
  const [base, bits] = cidr.split('/') as [string, string];
  const size = 2 ** (32 - Number(bits));
  return Math.floor(toInt(ip) / size) === Math.floor(toInt(base) / size);
}

/** The API documentation, read literally. */
function reference(policies: Policy[], r: Request): boolean {
  const isolating = policies.filter((p) => p.namespace === 'x' && p.selectsA && (p.types ?? ['Ingress']).includes('Ingress'));
  if (isolating.length === 0) return true;
  return isolating.some((p) => (p.ingress ?? []).some((rule) => {
    const fromOk = rule.from === null || rule.from.length === 0 || rule.from.some((f) => (f.kind === 'ns'
      ? r.ns !== null && f.names.includes(r.ns)
      : inCidr(r.ip, (BLOCKS[f.index] as { cidr: string }).cidr) && !(BLOCKS[f.index] as { except: string[] }).except.some((e) => inCidr(r.ip, e))));
    const portOk = rule.ports === null || rule.ports.length === 0 || rule.ports.some((p) => p.protocol === 'TCP' && (p.endPort === undefined ? r.port === p.port : r.port >= p.port && r.port <= p.endPort));
    return fromOk && portOk;
  }));
}

function ctx(r: Request): RequestContext {
  const spiffeId = r.ns === null ? null : `spiffe://cluster.local/ns/${r.ns}/sa/client`;
  return {
    protocol: 'http', method: 'GET', path: '/', query: '', authority: 'a', host: 'a', headers: {},
    peer: spiffeId === null ? null : { spiffeId, principal: spiffeId.slice('spiffe://'.length), trustDomain: 'cluster.local', namespace: r.ns ?? undefined, serviceAccount: 'client' },
    sourceIp: r.ip, remoteIp: r.ip, destinationIp: undefined, port: r.port, sni: undefined, jwt: null,
  } as RequestContext;
}

test('NetworkPolicy decisions agree with a literal reading of the API (isolation, union, peers, ipBlock except, ports)', () => {
  fc.assert(fc.property(fc.array(policy, { maxLength: 4 }), fc.array(request, { minLength: 1, maxLength: 8 }), (raw, requests) => {
    // policyTypes without Ingress next to ingress rules is legal (a warning); the reference ignores those rules too.
    const policies: Policy[] = raw.map((p, i) => ({ ...p, name: `p${i}` }));
    const result = compilePolicies([{ file: 'p.yaml', text: policies.map(toYaml).join('---\n') }], options);
    const snapshot = result.snapshot;
    assert.ok(snapshot, JSON.stringify(result.diagnostics.filter((d) => d.severity === 'error')));
    for (const r of requests) {
      const verdict: string = evaluate(snapshot, ctx(r)).verdict;
      assert.equal(verdict === 'allow', reference(policies, r), `${JSON.stringify(r)} with\n${policies.map(toYaml).join('---\n')}`);
    }
  }), { numRuns: 120 });
});
