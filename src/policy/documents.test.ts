import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePolicySources } from './documents.js';
import { formatDiagnostic } from './diagnostics.js';

const yamlText = `# two policies and a List, as kubectl apply takes them
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: &meta
  name: first
  namespace: foo
spec:
  rules:
  - from:
    - source:
        principals: ["cluster.local/ns/foo/sa/bar"]
---
apiVersion: v1
kind: List
items:
- apiVersion: security.istio.io/v1beta1
  kind: AuthorizationPolicy
  metadata:
    name: second
    namespace: foo
  spec: {}
`;

test('multi-document YAML with anchors and kind: List yields one document per policy with positions', () => {
  const { documents, diagnostics } = parsePolicySources([{ file: 'p.yaml', text: yamlText }]);
  assert.deepEqual(diagnostics, []);
  assert.deepEqual(documents.map((d) => d.metadata.name), ['first', 'second']);
  const first = documents[0]!;
  assert.deepEqual(first.locate('spec.rules[0].from[0].source.principals'), { file: 'p.yaml', line: 11, column: 9 });
  assert.equal(documents[1]!.origin.line, 16);
});

test('YAML syntax errors and missing names are diagnostics with file and line', () => {
  const { documents, diagnostics } = parsePolicySources([
    { file: 'bad.yaml', text: 'apiVersion: v1\nkind: X\nmetadata:\n  name: [unclosed\n' },
    { file: 'noname.yaml', text: 'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {}\n' },
  ]);
  assert.equal(documents.length, 0);
  assert.equal(diagnostics.length, 2);
  assert.equal(diagnostics[0]!.code, 'PRT_YAML_SYNTAX');
  assert.match(formatDiagnostic(diagnostics[1]!), /^noname\.yaml:1:1 error PRT_DOC_MISSING_FIELD document has no metadata\.name \(metadata\.name\)$/);
});
