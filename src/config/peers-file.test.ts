import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatDiagnostic } from '../policy/diagnostics.js';
import { isHeterogeneous } from '../policy/peers.js';
import { parsePeerFile } from './peers-file.js';

const WEB = 'spiffe://cluster.local/ns/shop/sa/web';

const errorsOf = (text: string): string[] => {
  const r = parsePeerFile(text, 'peers.yaml');
  assert.equal(r.registry, undefined, 'a registry with errors is refused whole');
  return r.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic);
};

test('a YAML registry: several pods per identity, namespace and service account from the SPIFFE ID', () => {
  const r = parsePeerFile(`peers:
- spiffeId: ${WEB}
  labels: {app: web, track: stable}
  namespaceLabels: {team: shop}
  ips: [10.0.0.1]
- spiffeId: ${WEB}
  namespace: shop
  serviceAccount: web
  labels: {app: web, track: canary}
  namespaceLabels: {team: shop}
  ips: ["10.0.0.2", "FD00::2"]
- spiffeId: spiffe://cluster.local/ns/shop/sa/api
  serviceAccountLabels: {tier: backend}
`, 'peers.yaml');
  assert.deepEqual(r.diagnostics, []);
  assert.ok(r.registry);
  const web = r.registry.byId.get(WEB);
  assert.equal(web?.length, 2);
  assert.deepEqual(web?.[0], {
    spiffeId: WEB, namespace: 'shop', serviceAccount: 'web', labels: { app: 'web', track: 'stable' },
    namespaceLabels: { team: 'shop', 'kubernetes.io/metadata.name': 'shop' }, serviceAccountLabels: {}, ips: ['10.0.0.1'],
  });
  assert.deepEqual(web?.[1]?.ips, ['10.0.0.2', 'fd00::2']);
  assert.ok(isHeterogeneous(r.registry, WEB));
  assert.deepEqual(r.registry.byId.get('spiffe://cluster.local/ns/shop/sa/api')?.[0]?.serviceAccountLabels, { tier: 'backend' });
});

test('JSON is read as well, and an empty list is an empty registry', () => {
  const r = parsePeerFile(JSON.stringify({ peers: [{ spiffeId: WEB, labels: { app: 'web' } }] }), 'peers.json');
  assert.equal(r.registry?.byId.get(WEB)?.[0]?.labels.app, 'web');
  assert.equal(parsePeerFile('peers: []\n', 'p.yaml').registry?.byId.size, 0);
});

test('namespace and serviceAccount must agree with a /ns/<ns>/sa/<sa> SPIFFE ID', () => {
  assert.deepEqual(errorsOf(`peers:
- spiffeId: ${WEB}
  namespace: other
  serviceAccount: web
`), [`peers.yaml:3:14 error PRT_PEERS_IDENTITY_MISMATCH namespace 'other' disagrees with the SPIFFE ID ${WEB} (namespace 'shop') (peers[0].namespace)`]);
  assert.deepEqual(errorsOf(`peers:
- spiffeId: spiffe://cluster.local/ns/shop/sa/web
  serviceAccount: api
`), [`peers.yaml:3:19 error PRT_PEERS_IDENTITY_MISMATCH serviceAccount 'api' disagrees with the SPIFFE ID ${WEB} (serviceAccount 'web') (peers[0].serviceAccount)`]);
  // Another ID shape carries no namespace: it must be given.
  assert.deepEqual(errorsOf(`peers:
- spiffeId: spiffe://example.org/billing
`), [
    'peers.yaml:2:3 error PRT_PEERS_FIELD_TYPE namespace is required: the SPIFFE ID has no /ns/<namespace>/sa/<serviceAccount> path to take it from (peers[0].namespace)',
    'peers.yaml:2:3 error PRT_PEERS_FIELD_TYPE serviceAccount is required: the SPIFFE ID has no /ns/<namespace>/sa/<serviceAccount> path to take it from (peers[0].serviceAccount)',
  ]);
  const other = parsePeerFile('peers:\n- {spiffeId: "spiffe://example.org/billing", namespace: pay, serviceAccount: billing}\n', 'p.yaml');
  assert.equal(other.registry?.byId.get('spiffe://example.org/billing')?.[0]?.namespace, 'pay');
  assert.deepEqual(errorsOf(`peers:
- spiffeId: ${WEB}
  namespaceLabels: {kubernetes.io/metadata.name: other}
`), [`peers.yaml:3:20 error PRT_PEERS_IDENTITY_MISMATCH namespaceLabels 'kubernetes.io/metadata.name: other' disagrees with namespace 'shop' (peers[0].namespaceLabels)`]);
});

test('every field is checked, with file, line and field path', () => {
  assert.deepEqual(errorsOf(`peers:
- spiffeId: ${WEB}
  label: {app: web}
  labels: {version: 2, "bad key!": x}
  ips: [10.0.0.0/8, 10.0.0.1]
- spiffeId: cluster.local/ns/a/sa/b
- just a string
`), [
    "peers.yaml:3:3 error PRT_PEERS_UNKNOWN_FIELD unknown field 'label' (did you mean 'labels'?) (peers[0].label)",
    'peers.yaml:4:21 error PRT_PEERS_FIELD_TYPE label \'version\' must be a string (quote it: "2") (peers[0].labels.version)',
    "peers.yaml:4:24 error PRT_PEERS_BAD_VALUE label key 'bad key!' is not a valid label name (at most 63 of [A-Za-z0-9-_.], alphanumeric at both ends) (peers[0].labels.bad key!)",
    "peers.yaml:5:9 error PRT_PEERS_BAD_VALUE '10.0.0.0/8' is not an IP address (a pod address, no prefix length) (peers[0].ips[0])",
    "peers.yaml:6:13 error PRT_PEERS_BAD_VALUE 'cluster.local/ns/a/sa/b' is not a SPIFFE ID: scheme must be spiffe:// (peers[1].spiffeId)",
    'peers.yaml:7:3 error PRT_PEERS_FIELD_TYPE each peer must be a map with spiffeId, namespace, serviceAccount, labels, namespaceLabels, serviceAccountLabels and ips (peers[2])',
  ]);
  assert.deepEqual(errorsOf('peer: []\n'), [
    "peers.yaml:1:1 error PRT_PEERS_UNKNOWN_FIELD unknown field 'peer' (the registry has one key: peers) (peer)",
    'peers.yaml:1:1 error PRT_PEERS_FIELD_TYPE peers is required (an empty registry is `peers: []`) (peers)',
  ]);
  assert.deepEqual(errorsOf(''), ['peers.yaml:1:1 error PRT_PEERS_FIELD_TYPE the peer registry must be a map with a `peers` list']);
  assert.deepEqual(errorsOf('peers: {a: 1}\n'), ['peers.yaml:1:8 error PRT_PEERS_FIELD_TYPE peers must be a list (peers)']);
  assert.equal(errorsOf('peers: [\n')[0]?.split(' ')[2], 'PRT_PEERS_YAML');
  assert.equal(errorsOf(`peers:\n- {spiffeId: ${WEB}, spiffeId: ${WEB}}\n`)[0]?.split(' ')[2], 'PRT_PEERS_YAML');
});

test('facts of a namespace, a ServiceAccount or an address cannot disagree between entries', () => {
  assert.deepEqual(errorsOf(`peers:
- spiffeId: ${WEB}
  namespaceLabels: {team: shop}
  serviceAccountLabels: {a: b}
  ips: [10.0.0.1]
- spiffeId: spiffe://cluster.local/ns/shop/sa/api
  namespaceLabels: {team: other}
  ips: [10.0.0.1]
- spiffeId: ${WEB}
  serviceAccountLabels: {c: d}
  ips: [10.0.0.1]
`), [
    'peers.yaml:7:20 error PRT_PEERS_CONFLICT namespace \'shop\' has other namespaceLabels at peers.yaml:2 (peers[1].namespaceLabels)',
    "peers.yaml:10:25 error PRT_PEERS_CONFLICT ServiceAccount 'shop/web' has other serviceAccountLabels at peers.yaml:2 (peers[2].serviceAccountLabels)",
    `peers.yaml:8:8 error PRT_PEERS_CONFLICT IP 10.0.0.1 is also listed for ${WEB} at peers.yaml:2 (peers[1].ips)`,
  ]);
  // Written once, the labels of a namespace or ServiceAccount apply to every entry of it.
  const r = parsePeerFile(`peers:
- spiffeId: ${WEB}
  namespaceLabels: {team: shop}
  serviceAccountLabels: {a: b}
- spiffeId: ${WEB}
- spiffeId: spiffe://cluster.local/ns/shop/sa/api
`, 'peers.yaml');
  assert.deepEqual(r.registry?.byId.get(WEB)?.[1]?.serviceAccountLabels, { a: 'b' });
  assert.deepEqual(r.registry?.byId.get('spiffe://cluster.local/ns/shop/sa/api')?.[0]?.namespaceLabels, { team: 'shop', 'kubernetes.io/metadata.name': 'shop' });
  assert.deepEqual(r.registry?.byId.get('spiffe://cluster.local/ns/shop/sa/api')?.[0]?.serviceAccountLabels, {});
});
