import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import type { JsonValue } from './documents-types.js';
import { checkShape, labelSelector, s, type ShapeProblem } from './schema.js';

const shape = s.object({
  name: s.nonEmptyString,
  port: s.intOrString,
  replicas: s.int({ min: 1, max: 3 }),
  mode: s.oneOf('Allow', 'Deny'),
  enabled: s.bool,
  labels: s.stringMap,
  selector: labelSelector,
  peers: s.list(s.object({ cidr: s.string, except: s.strings }, ['cidr']), { min: 1, max: 2 }),
  status: s.any,
}, ['name']);

function problems(yaml: string, nulls?: 'ignore' | 'report'): Array<[string, string]> {
  const out: ShapeProblem[] = [];
  checkShape(parse(yaml) as JsonValue, shape, 'spec', out, { nulls });
  return out.map((p) => [p.kind, p.fieldPath]);
}

test('a document that fits its shape has no problems', () => {
  assert.deepEqual(problems(`
name: web
port: http
replicas: 2
mode: Deny
enabled: true
labels: {app: web}
selector: {matchExpressions: [{key: tier, operator: In, values: [a]}]}
peers: [{cidr: 10.0.0.0/8, except: [10.1.0.0/16]}]
status: {anything: [1, 2]}
`), []);
});

test('unknown fields are reported with the closest known name', () => {
  const out: ShapeProblem[] = [];
  checkShape(parse('name: a\nselectr: {}\n') as JsonValue, shape, 'spec', out);
  assert.equal(out.length, 1);
  assert.equal(out[0]?.kind, 'unknown_field');
  assert.equal(out[0]?.fieldPath, 'spec.selectr');
  assert.match(out[0]?.message ?? '', /did you mean "selector"/);
  assert.doesNotMatch(out[0]?.message ?? '', /status/, 'fields of any shape are not offered');
});

test('wrong types, values outside an enum or bounds, and missing required fields', () => {
  assert.deepEqual(problems(`
name: ""
port: 1.5
replicas: 7
mode: allow
enabled: "yes"
labels: {app: 1}
selector: {matchExpressions: [{key: tier, operator: Within}, {operator: In}]}
peers: [{except: [a]}, {cidr: a}, {cidr: b}]
`), [
    ['bad_value', 'spec.name'],
    ['wrong_type', 'spec.port'],
    ['bad_value', 'spec.replicas'],
    ['bad_value', 'spec.mode'],
    ['wrong_type', 'spec.enabled'],
    ['wrong_type', 'spec.labels[app]'],
    ['bad_value', 'spec.selector.matchExpressions[0].operator'],
    ['missing_field', 'spec.selector.matchExpressions[1]'],
    ['too_many', 'spec.peers'],
    ['missing_field', 'spec.peers[0]'],
  ]);
  assert.deepEqual(problems('peers: []\n'), [['too_few', 'spec.peers'], ['missing_field', 'spec']]);
});

test('null fields are dropped as Kubernetes does; reporting them is a choice', () => {
  const yaml = 'name: a\nlabels: null\npeers: [null, {cidr: x}]\n';
  assert.deepEqual(problems(yaml), []);
  assert.deepEqual(problems(yaml, 'report'), [['null_field', 'spec.labels'], ['wrong_type', 'spec.peers[0]']]);
});

test('floats, bounded strings, integer enums and an int-or-string with its own name', () => {
  const limits = s.object({ order: s.number, selector: s.shortString(5), ipVersion: s.intOneOf(4, 6), protocol: s.intOrStringOf('a protocol name or number') });
  const check = (yaml: string): Array<[string, string, string]> => {
    const out: ShapeProblem[] = [];
    checkShape(parse(yaml) as JsonValue, limits, 'spec', out);
    return out.map((p) => [p.kind, p.fieldPath, p.message]);
  };
  assert.deepEqual(check('order: 100.5\nselector: "abcde"\nipVersion: 6\nprotocol: TCP'), []);
  assert.deepEqual(check('order: "1"\nselector: "abcdef"\nipVersion: 5\nprotocol: [6]'), [
    ['wrong_type', 'spec.order', 'spec.order must be a number, found string'],
    ['too_many', 'spec.selector', 'spec.selector is longer than 5 characters'],
    ['bad_value', 'spec.ipVersion', 'spec.ipVersion must be one of 4, 6 (got 5)'],
    ['wrong_type', 'spec.protocol', 'spec.protocol must be a protocol name or number, found list'],
  ]);
});
