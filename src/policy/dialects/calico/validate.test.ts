// Calico per-document validation: schema, the v3 API's CEL rules (api/pkg/apis/projectcalico/v3 policy_common.go,
// globalnetworkpolicy.go) and selector errors with their column.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePolicySources } from '../../documents.js';
import { validateCalicoDocument } from './validate.js';

function diagnostics(yaml: string) {
  const parsed = parsePolicySources([{ file: 'p.yaml', text: yaml }]);
  assert.deepEqual(parsed.diagnostics, []);
  return parsed.documents.flatMap((d) => validateCalicoDocument(d));
}

const codes = (yaml: string): string[] => diagnostics(yaml).map((d) => `${d.code}:${d.fieldPath}:${d.origin.line}`);

const np = (spec: string) => `apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: p, namespace: shop}\nspec:\n${spec}\n`;
const gnp = (spec: string) => `apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: g}\nspec:\n${spec}\n`;
const ruleCodes = (rule: string) => codes(np(`  ingress:\n  - ${rule}`)).map((c) => c.split(':').slice(0, 2).join(':'));

test('a policy as the Calico docs write it is valid', () => {
  assert.deepEqual(codes(np([
    '  tier: default',
    '  order: 100.5',
    '  selector: role == \'database\'',
    '  types: [Ingress, Egress]',
    '  ingress:',
    '  - action: Allow',
    '    protocol: TCP',
    '    source:',
    '      selector: role == \'frontend\'',
    '      namespaceSelector: projectcalico.org/name == "web"',
    '      serviceAccounts: {names: [api], selector: "team in {\'a\', \'b\'}"}',
    '    destination:',
    '      ports: [6379, "8000:8100", redis]',
    '  - action: Log',
    '  - action: Pass',
    '    source: {nets: [10.0.0.0/8], notNets: ["10.1.0.0/16"]}',
    '  - action: Allow',
    '    http: {methods: [GET], paths: [{exact: /health}, {prefix: /api}]}',
    '  egress:',
    '  - action: Deny',
  ].join('\n'))), []);
  assert.deepEqual(codes('apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: security}\nspec: {order: 100, defaultAction: Pass}\n'), []);
});

test('unknown fields are errors at their line, with a suggestion', () => {
  const d = diagnostics(np('  selector: all()\n  ingres:\n  - action: Allow\n'));
  assert.equal(d.length, 1);
  assert.equal(d[0]?.code, 'PRT_CALICO_UNKNOWN_FIELD');
  assert.equal(d[0]?.fieldPath, 'spec.ingres');
  assert.equal(d[0]?.origin.line, 6);
  assert.match(d[0]?.message ?? '', /did you mean "ingress"\?/);
  assert.deepEqual(codes(np('  ingress:\n  - action: Allow\n    source: {selectr: all()}')), ['PRT_CALICO_UNKNOWN_FIELD:spec.ingress[0].source.selectr:7']);
  // GlobalNetworkPolicy-only fields are unknown on a NetworkPolicy.
  assert.deepEqual(codes(np('  namespaceSelector: all()')), ['PRT_CALICO_UNKNOWN_FIELD:spec.namespaceSelector:5']);
});

test('a selector error names the field, its line and the column inside the selector', () => {
  const d = diagnostics(np('  selector: app == web'));
  assert.equal(d.length, 1);
  assert.equal(d[0]?.code, 'PRT_CALICO_BAD_SELECTOR');
  assert.equal(d[0]?.fieldPath, 'spec.selector');
  assert.equal(d[0]?.origin.line, 5);
  assert.match(d[0]?.message ?? '', /expected a quoted string after ==, found label "web" at column 8/);
  assert.deepEqual(ruleCodes('{action: Allow, source: {selector: "a in {\'x\'"}}'), ['PRT_CALICO_BAD_SELECTOR:spec.ingress[0].source.selector']);
  assert.deepEqual(ruleCodes('{action: Allow, source: {serviceAccounts: {selector: "has("}}}'), ['PRT_CALICO_BAD_SELECTOR:spec.ingress[0].source.serviceAccounts.selector']);
});

test('global() only in an EntityRule namespaceSelector', () => {
  assert.deepEqual(ruleCodes('{action: Allow, source: {namespaceSelector: global()}}'), []);
  assert.deepEqual(ruleCodes('{action: Allow, source: {selector: global()}}'), ['PRT_CALICO_BAD_SELECTOR:spec.ingress[0].source.selector']);
  assert.deepEqual(codes(gnp('  namespaceSelector: global()')).map((c) => c.split(':')[0]), ['PRT_CALICO_BAD_SELECTOR']);
});

test('action must be Allow, Deny, Log or Pass (case matters), with a suggestion', () => {
  const d = diagnostics(np('  ingress:\n  - action: allow'));
  assert.equal(d[0]?.code, 'PRT_CALICO_BAD_ACTION');
  assert.match(d[0]?.message ?? '', /did you mean Allow\?/);
  assert.deepEqual(ruleCodes('{action: NextTier}'), ['PRT_CALICO_BAD_ACTION:spec.ingress[0].action']);
  assert.deepEqual(ruleCodes('{source: {}}'), ['PRT_CALICO_MISSING_FIELD:spec.ingress[0]']);
});

test('policy_common.go CEL rules: http only on Allow over TCP, ports need a port protocol, icmp needs ICMP', () => {
  assert.deepEqual(ruleCodes('{action: Deny, http: {methods: [GET]}}'), ['PRT_CALICO_FORBIDDEN:spec.ingress[0].http']);
  assert.deepEqual(ruleCodes('{action: Allow, protocol: UDP, http: {methods: [GET]}}'), ['PRT_CALICO_FORBIDDEN:spec.ingress[0].protocol']);
  assert.deepEqual(ruleCodes('{action: Allow, http: {paths: [{exact: /a, prefix: /b}]}}'), ['PRT_CALICO_FORBIDDEN:spec.ingress[0].http.paths[0]']);
  assert.deepEqual(ruleCodes('{action: Allow, destination: {ports: [80]}}'), ['PRT_CALICO_FORBIDDEN:spec.ingress[0].destination.ports']);
  assert.deepEqual(ruleCodes('{action: Allow, protocol: ICMP, destination: {ports: [80]}}'), ['PRT_CALICO_FORBIDDEN:spec.ingress[0].destination.ports']);
  assert.deepEqual(ruleCodes('{action: Allow, protocol: 6, destination: {notPorts: ["1:1023"]}}'), []);
  assert.deepEqual(ruleCodes('{action: Allow, protocol: TCP, destination: {ports: ["90:80", 70000, "-x"]}}'), [
    'PRT_CALICO_BAD_PORT:spec.ingress[0].destination.ports[0]', 'PRT_CALICO_BAD_PORT:spec.ingress[0].destination.ports[1]', 'PRT_CALICO_BAD_PORT:spec.ingress[0].destination.ports[2]',
  ]);
  assert.deepEqual(ruleCodes('{action: Allow, icmp: {type: 8}}'), ['PRT_CALICO_FORBIDDEN:spec.ingress[0].icmp']);
  assert.deepEqual(ruleCodes('{action: Allow, protocol: ICMP, icmp: {code: 0}}'), ['PRT_CALICO_FORBIDDEN:spec.ingress[0].icmp.code']);
  assert.deepEqual(ruleCodes('{action: Allow, protocol: ICMP, ipVersion: 6}'), ['PRT_CALICO_FORBIDDEN:spec.ingress[0].protocol']);
  assert.deepEqual(ruleCodes('{action: Allow, protocol: GRE}'), ['PRT_CALICO_BAD_PROTOCOL:spec.ingress[0].protocol']);
  assert.deepEqual(ruleCodes('{action: Allow, ipVersion: 4, source: {nets: ["2001:db8::/32", 10.0.0.0/33]}}'), [
    'PRT_CALICO_FORBIDDEN:spec.ingress[0].source.nets[0]', 'PRT_CALICO_BAD_CIDR:spec.ingress[0].source.nets[1]',
  ]);
});

test('services exclude selectors, nets and service accounts; ports with services only on an ingress source', () => {
  assert.deepEqual(ruleCodes('{action: Allow, source: {services: {name: web}}}'), []);
  assert.deepEqual(ruleCodes('{action: Allow, source: {services: {name: web}, selector: all()}}'), ['PRT_CALICO_FORBIDDEN:spec.ingress[0].source.selector']);
  assert.deepEqual(ruleCodes('{action: Allow, source: {services: {namespace: x}}}'), ['PRT_CALICO_MISSING_FIELD:spec.ingress[0].source.services.name']);
  assert.deepEqual(ruleCodes('{action: Allow, protocol: TCP, destination: {services: {name: web}, ports: [80]}}'), ['PRT_CALICO_FORBIDDEN:spec.ingress[0].destination.services']);
});

test('GlobalNetworkPolicy: preDNAT / doNotTrack / applyOnForward rules (globalnetworkpolicy.go)', () => {
  const g = (spec: string) => codes(gnp(spec)).map((c) => c.split(':').slice(0, 2).join(':'));
  assert.deepEqual(g('  doNotTrack: true\n  applyOnForward: true'), []);
  assert.deepEqual(g('  doNotTrack: true'), ['PRT_CALICO_FORBIDDEN:spec.applyOnForward']);
  assert.deepEqual(g('  doNotTrack: true\n  preDNAT: true\n  applyOnForward: true'), ['PRT_CALICO_FORBIDDEN:spec.preDNAT']);
  assert.deepEqual(g('  preDNAT: true\n  applyOnForward: true\n  egress: [{action: Allow}]'), ['PRT_CALICO_FORBIDDEN:spec.egress']);
});

test('types, order and tier names are checked', () => {
  assert.deepEqual(codes(np('  types: [Ingres]')).map((c) => c.split(':')[0]), ['PRT_CALICO_BAD_VALUE']);
  assert.deepEqual(codes(np('  order: high')).map((c) => c.split(':')[0]), ['PRT_CALICO_WRONG_TYPE']);
  assert.deepEqual(codes(np('  tier: Security')).map((c) => c.split(':')[0]), ['PRT_CALICO_BAD_VALUE']);
  assert.deepEqual(codes('apiVersion: projectcalico.org/v3\nkind: Tier\nmetadata: {name: t}\nspec: {defaultAction: Allow}\n').map((c) => c.split(':')[0]), ['PRT_CALICO_BAD_VALUE']);
});

test('shared schema limits keep their field path, line and wording: string length, number, ipVersion, protocol type', () => {
  const one = (yaml: string) => {
    const d = diagnostics(yaml);
    assert.equal(d.length, 1, JSON.stringify(d));
    return { code: d[0]?.code, at: `${d[0]?.fieldPath}:${d[0]?.origin.line}`, message: d[0]?.message ?? '' };
  };
  const long = one(np(`  selector: "${'a'.repeat(1025)} == 'x'"`));
  assert.deepEqual([long.code, long.at], ['PRT_CALICO_TOO_MANY', 'spec.selector:5']);
  assert.match(long.message, /spec.selector is longer than 1024 characters/);
  assert.equal(diagnostics(np(`  selector: "${'a'.repeat(1010)} == 'x'"`)).length, 0, 'a selector of 1,018 characters is fine');
  const order = one(np('  order: "100"'));
  assert.deepEqual([order.code, order.at], ['PRT_CALICO_WRONG_TYPE', 'spec.order:5']);
  assert.match(order.message, /spec.order must be a number, found string/);
  const ip = one(np('  ingress:\n  - {action: Allow, ipVersion: 5}'));
  assert.deepEqual([ip.code, ip.at], ['PRT_CALICO_BAD_VALUE', 'spec.ingress[0].ipVersion:6']);
  assert.match(ip.message, /must be one of 4, 6 \(got 5\)/);
  const proto = one(np('  ingress:\n  - {action: Allow, protocol: true}'));
  assert.deepEqual([proto.code, proto.at], ['PRT_CALICO_WRONG_TYPE', 'spec.ingress[0].protocol:6']);
  assert.match(proto.message, /must be a protocol name or number, found boolean/);
  const port = one(np('  ingress:\n  - action: Allow\n    protocol: TCP\n    destination: {ports: [{a: 1}]}'));
  assert.match(port.message, /spec.ingress\[0\].destination.ports\[0\] must be a port number or a port name, found object/);
});
