// walkAsShadow: a tier walk written as one first-match list decides as the walk does (Pass skips the rest of its
// tier, a tier's default ends it, Log decides nothing, what every tier passed is allowed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Matcher, PolicyRef, PolicyTier, TierDefault, TierRule } from './ir.js';
import { walkAsShadow } from './preview.js';

const ref = (name: string): PolicyRef => ({ dialect: 'calico', kind: 'NetworkPolicy', namespace: 'shop', name });
const from = (cidr: string): Matcher => ({ type: 'source.ip', cidrs: [cidr] });
const rule = (id: string, action: TierRule['action'], match: Matcher): TierRule => ({ id, policy: ref(id), action, match, reason: action, namedAs: 'rule' });
const tier = (name: string, rules: TierRule[], otherwise: TierDefault): PolicyTier => ({
  dialect: 'calico', name, group: 'calico', protocols: ['http'], ports: {},
  anyPort: { ref: null, routes: null, rules, otherwise, shadow: null, rateLimit: null },
});

test('rules after a Pass are guarded by it, a deny default becomes the tier\'s last rule, Log rules are dropped', () => {
  const pass = from('10.0.0.0/8');
  const shadow = walkAsShadow([
    tier('security', [rule('log', 'log', { type: 'any' }), rule('deny-66', 'deny', from('10.66.0.0/16')), rule('pass-internal', 'pass', pass), rule('allow-all', 'allow', { type: 'any' })],
      { verdict: 'deny', reason: 'calico_end_of_tier_deny', policy: ref('security') }),
    tier('default', [rule('allow-get', 'allow', { type: 'request.method', match: { kind: 'exact', value: 'GET' } })],
      { verdict: 'pass', reason: 'calico_tier_pass', policy: null }),
  ], 'STAGED');
  assert.deepEqual(shadow.rules.map((r) => [r.id, r.action]), [
    ['deny-66', 'deny'], ['allow-all', 'allow'], ['tier[security]-calico_end_of_tier_deny', 'deny'], ['allow-get', 'allow'],
  ]);
  assert.deepEqual(shadow.rules[1]?.match, { type: 'not', of: pass }, 'an allow after the Pass holds only where the Pass did not match');
  assert.deepEqual(shadow.rules[2]?.match, { type: 'not', of: pass }, 'the end-of-tier deny too');
  assert.deepEqual(shadow.rules[0]?.match, from('10.66.0.0/16'), 'a rule before the Pass is not guarded');
  assert.deepEqual(shadow.otherwise, { verdict: 'allow', action: 'STAGED' });
});

test('an unnamed default allow is only accepted at the end of the walk', () => {
  const end = tier('end', [], { verdict: 'allow', reason: 'default_allow', policy: null });
  assert.deepEqual(walkAsShadow([end], 'STAGED').rules, []);
  assert.throws(() => walkAsShadow([end, end], 'STAGED'), /needs a policy/);
});
