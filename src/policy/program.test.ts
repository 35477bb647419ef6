// The composition models of the network-policy dialects (cni-dialects.md §0), built by hand as tiers of the
// one IR and evaluated by the one evaluator: no dialect-specific code is involved.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RequestContext } from './context-types.js';
import { evaluate } from './evaluate.js';
import type { CompileOptions, Matcher, PolicyProgram, PolicyTier, RuleAction, TierDefault, TierRule } from './ir.js';
import type { PolicySnapshot } from './snapshot.js';
import { compileProgram } from './program.js';
import { testCompileOptions } from '../../test/helpers/compile-options.js';

const options: CompileOptions = testCompileOptions({ namespace: 'shop', serviceAccount: 'api' });

function snapshot(tiers: PolicyTier[]): PolicySnapshot {
  const program: PolicyProgram = { tiers };
  return { revision: 'r', options, program, compiled: compileProgram(program, {}), jwtProviders: [], jwtOutputHeaders: new Set(), documents: [], diagnostics: [] };
}

const from = (cidr: string): Matcher => ({ type: 'source.ip', cidrs: [cidr] });
const method = (value: string): Matcher => ({ type: 'request.method', match: { kind: 'exact', value } });
const port = (p: number): Matcher => ({ type: 'destination.port', ports: [p] });

function rule(dialect: string, name: string, action: RuleAction, match: Matcher): TierRule {
  return { id: name, policy: { dialect, kind: 'Policy', namespace: 'shop', name }, action, match, reason: `${action}_rule`, namedAs: 'rule' };
}

function tier(dialect: string, name: string, group: string, rules: TierRule[], otherwise: TierDefault['verdict']): PolicyTier {
  return {
    dialect, name, group, protocols: ['http', 'grpc', 'tcp'], ports: {},
    anyPort: { ref: null, routes: null, rules, otherwise: { verdict: otherwise, reason: `default_${otherwise}`, policy: null }, shadow: null, rateLimit: null },
  };
}

function ctx(over: Partial<RequestContext> = {}): RequestContext {
  return {
    protocol: 'http', method: 'GET', path: '/', query: '', authority: 'api', host: 'api', headers: {}, peer: null,
    sourceIp: '10.0.0.1', remoteIp: '10.0.0.1', destinationIp: undefined, port: 8080, sni: undefined, jwt: null, ...over,
  };
}

const verdictOf = (s: PolicySnapshot, c: Partial<RequestContext>) => {
  const d = evaluate(s, ctx(c));
  return [d.verdict, d.dialect, d.rule ?? d.reason];
};

test('Calico: tiers in order, first Allow/Deny wins, Pass skips to the next tier, Log continues, end of tier denies', () => {
  const s = snapshot([
    tier('calico', 'security', 'calico', [
      rule('calico', 'log-all', 'log', { type: 'any' }),
      rule('calico', 'quarantine', 'deny', from('10.9.0.0/16')),
      rule('calico', 'to-app-tier', 'pass', from('10.0.0.0/8')),
      rule('calico', 'ops', 'allow', from('192.168.0.0/16')),
    ], 'deny'),
    tier('calico', 'application', 'calico', [rule('calico', 'reads', 'allow', method('GET'))], 'deny'),
  ]);
  assert.deepEqual(verdictOf(s, { sourceIp: '10.9.1.1' }), ['deny', 'calico', 'quarantine']);
  assert.deepEqual(verdictOf(s, { sourceIp: '10.1.1.1' }), ['allow', 'calico', 'reads']);
  assert.deepEqual(verdictOf(s, { sourceIp: '10.1.1.1', method: 'POST' }), ['deny', 'calico', 'default_deny']);
  // An Allow in the first tier is final for Calico: the application tier is not consulted.
  assert.deepEqual(verdictOf(s, { sourceIp: '192.168.1.1', method: 'POST' }), ['allow', 'calico', 'ops']);
  assert.deepEqual(verdictOf(s, { sourceIp: '172.16.0.1' }), ['deny', 'calico', 'default_deny']);
  assert.deepEqual(evaluate(s, ctx({ sourceIp: '10.9.1.1' })).audit?.rule, 'log-all', 'Log marks and continues');
});

test('ClusterNetworkPolicy: Admin (Accept/Deny/Pass by priority) -> NetworkPolicy (union, isolation) -> Baseline -> allow', () => {
  const admin = tier('kubernetes', 'admin', 'kubernetes', [
    rule('kubernetes', 'deny-attackers', 'deny', from('10.66.0.0/16')),
    rule('kubernetes', 'accept-ops', 'allow', from('10.5.0.0/16')),
    rule('kubernetes', 'delegate-metrics', 'pass', port(9090)),
  ], 'pass');
  const networkPolicy = (isolated: boolean) => tier('kubernetes', 'networkpolicy', 'kubernetes', isolated ? [
    rule('kubernetes', 'np-frontend', 'allow', from('10.1.0.0/16')),
    rule('kubernetes', 'np-batch', 'allow', from('10.2.0.0/16')),
  ] : [], isolated ? 'deny' : 'pass');
  const baseline = tier('kubernetes', 'baseline', 'kubernetes', [rule('kubernetes', 'baseline-deny-3', 'deny', from('10.3.0.0/16'))], 'pass');
  const isolated = snapshot([admin, networkPolicy(true), baseline]);
  assert.deepEqual(verdictOf(isolated, { sourceIp: '10.66.0.1' }), ['deny', 'kubernetes', 'deny-attackers']);
  assert.deepEqual(verdictOf(isolated, { sourceIp: '10.5.0.1' }), ['allow', 'kubernetes', 'accept-ops']);
  assert.deepEqual(verdictOf(isolated, { sourceIp: '10.2.0.1' }), ['allow', 'kubernetes', 'np-batch']);
  assert.deepEqual(verdictOf(isolated, { sourceIp: '10.7.0.1' }), ['deny', 'kubernetes', 'default_deny']);
  const open = snapshot([admin, networkPolicy(false), baseline]);
  // No NetworkPolicy selects the pod: Baseline decides, and with no Baseline match the default is allow.
  assert.deepEqual(verdictOf(open, { sourceIp: '10.3.0.1' }), ['deny', 'kubernetes', 'baseline-deny-3']);
  assert.deepEqual(verdictOf(open, { sourceIp: '10.7.0.1' }), ['allow', null, 'no_policies']);
  // Admin Pass skips the rest of the Admin tier (its later rules) and the NetworkPolicy tier decides.
  assert.deepEqual(verdictOf(isolated, { sourceIp: '10.7.0.1', port: 9090 }), ['deny', 'kubernetes', 'default_deny']);
});

test('Cilium: union of allows, any matching deny wins; default deny once selected', () => {
  const s = snapshot([tier('cilium', 'ingress', 'cilium', [
    rule('cilium', 'deny-10.9', 'deny', from('10.9.0.0/16')),
    rule('cilium', 'allow-10/8', 'allow', from('10.0.0.0/8')),
    rule('cilium', 'allow-get', 'allow', method('GET')),
  ], 'deny')]);
  assert.deepEqual(verdictOf(s, { sourceIp: '10.9.0.1' }), ['deny', 'cilium', 'deny-10.9']);
  assert.deepEqual(verdictOf(s, { sourceIp: '10.1.0.1', method: 'POST' }), ['allow', 'cilium', 'allow-10/8']);
  assert.deepEqual(verdictOf(s, { sourceIp: '172.16.0.1' }), ['allow', 'cilium', 'allow-get']);
  assert.deepEqual(verdictOf(s, { sourceIp: '172.16.0.1', method: 'POST' }), ['deny', 'cilium', 'default_deny']);
});

test('several dialects are defense in depth: every group must allow, and a deny names its dialect', () => {
  const s = snapshot([
    tier('calico', 'default', 'calico', [rule('calico', 'cluster', 'allow', from('10.0.0.0/8'))], 'deny'),
    tier('istio', 'http', 'istio', [rule('istio', 'gets', 'allow', method('GET'))], 'deny'),
  ]);
  assert.deepEqual(verdictOf(s, { sourceIp: '10.1.0.1' }), ['allow', 'calico', 'cluster']);
  assert.deepEqual(verdictOf(s, { sourceIp: '10.1.0.1', method: 'POST' }), ['deny', 'istio', 'default_deny']);
  assert.deepEqual(verdictOf(s, { sourceIp: '172.16.0.1' }), ['deny', 'calico', 'default_deny']);
});
