// The shipped example (examples/replay/): a log recorded by running the sidecar, replayed against the candidate
// that tightens one rule, against the Linkerd translation of the same intent and against a Kubernetes
// NetworkPolicy: every dialect the engine knows, through the same command and code.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../helpers/paths.js';

const root = repoRoot();
const workload = ['--namespace', 'demo', '--labels', 'app=service-b', '--service-account', 'service-b'];
const log = join(root, 'examples/replay/decisions.ndjson');

interface Report {
  counts: Record<string, number>;
  changes: Record<string, { by_rule: { key: string; count: number; samples: { method: string; path: string; failing?: string[] }[] }[] }>;
}

function replay(policies: string[], logFile = log): Promise<Report> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [join(root, 'dist/src/main.js'), 'replay', '--log', logFile, ...policies.flatMap((p) => ['--policies', p]), ...workload, '--format', 'json'],
      (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(JSON.parse(stdout) as Report)));
  });
}
const keys = (r: Report, kind: string) => r.changes[kind]!.by_rule.map((g) => [g.key, g.count]);

describe('examples/replay', () => {
  it('the recorded log replays unchanged under the policies that recorded it', async () => {
    const r = await replay([join(root, 'examples/istio/policies')]);
    assert.deepEqual(r.counts, { events: 14, replayed: 14, unchanged: 14, newly_denied: 0, newly_allowed: 0, changed_reason: 0, not_replayable: 0, malformed: 0 });
  });

  it('the candidate that tightens one rule newly denies the five token-less reads', async () => {
    const r = await replay([join(root, 'examples/replay/candidate'), join(root, 'examples/istio/policies/service-b-deny-admin.yaml'), join(root, 'examples/istio/policies/service-b-jwt.yaml')]);
    assert.deepEqual([r.counts['unchanged'], r.counts['newly_denied'], r.counts['newly_allowed'], r.counts['changed_reason']], [9, 5, 0, 0]);
    assert.deepEqual(keys(r, 'newly_denied'), [['allow (allow_policy_matched) by istio AuthorizationPolicy demo/service-b-allow, rule ns[demo]-policy[service-b-allow]-rule[0] -> deny (no_allow_policy_matched)', 5]]);
  });

  it('across dialects: the Linkerd translation disagrees on POST /api/orders and /healthz only', async () => {
    const r = await replay([join(root, 'examples/linkerd/policies')]);
    assert.deepEqual([r.counts['unchanged'], r.counts['newly_denied'], r.counts['newly_allowed'], r.counts['changed_reason']], [0, 1, 1, 12]);
    assert.deepEqual(keys(r, 'newly_denied'), [['allow (allow_policy_matched) by istio AuthorizationPolicy demo/service-b-allow, rule ns[demo]-policy[service-b-allow]-rule[1] -> not_found (route_not_found) by linkerd Server demo/service-b-http', 1]]);
    assert.deepEqual(r.changes['newly_denied']!.by_rule[0]!.samples.map((s) => `${s.method} ${s.path}`), ['POST /api/orders']);
    assert.deepEqual(keys(r, 'newly_allowed'), [['deny (no_allow_policy_matched) -> allow (authorized) by linkerd AuthorizationPolicy demo/health-anyone, rule httproute/health, authorized by authorizationpolicy/health-anyone', 1]]);
  });

  it('a Kubernetes NetworkPolicy is replayed with no change to replay: the source address it tests was recorded', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'replay-np-'));
    try {
      writeFileSync(join(dir, 'np.yaml'), `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: service-b-ingress, namespace: demo}
spec:
  podSelector: {matchLabels: {app: service-b}}
  policyTypes: [Ingress]
  ingress:
  - from: [{ipBlock: {cidr: 10.0.0.0/8}}]
    ports: [{port: 8080, protocol: TCP}]
`);
      const r = await replay([join(dir, 'np.yaml')]);
      assert.deepEqual([r.counts['newly_denied'], r.counts['newly_allowed']], [8, 0]);
      const failing = r.changes['newly_denied']!.by_rule[0]!.samples[0]!.failing ?? [];
      assert.ok(failing.some((f) => f.includes('source.ip wants in ["10.0.0.0/8"]')), JSON.stringify(failing));
      // An opaque TCP connection's event (protocol tcp: peer, addresses and port only) replays the same way.
      const tcp = { v: 1, decision_id: 't-1', time: '2026-12-06T20:00:00.000Z', mode: 'enforce', verdict: 'allow', would_deny: false, dialect: null, policy: null, rule: null,
        authorization: null, reason: 'no_policies', audit: null, shadow: null, peer: { spiffe_id: 'spiffe://cluster.local/ns/demo/sa/service-a', ip: '192.0.2.2' },
        request: { protocol: 'tcp', method: '', authority: '', path: '', listener: 'db', port: 8080, destination_ip: '192.0.2.9' }, jwt: null, status: 0, grpc_status: null,
        policy_revision: 'r', latency_us: 3, upstream: { outcome: 'ok', status: null, duration_us: 9, bytes_sent: 1, bytes_received: 2 }, capture: 'replayable' };
      writeFileSync(join(dir, 'tcp.ndjson'), JSON.stringify(tcp) + '\n');
      const t = await replay([join(dir, 'np.yaml')], join(dir, 'tcp.ndjson'));
      assert.deepEqual(keys(t, 'newly_denied'), [['allow (no_policies) -> deny (networkpolicy_isolated) by kubernetes NetworkPolicy demo/service-b-ingress', 1]]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
