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

test('document start lines from the marker scan agree with the positioned parser', async () => {
  const { parseAllDocuments, isScalar } = await import('yaml');
  const text = `%YAML 1.2
---
# leading comment
apiVersion: v1
kind: A
metadata: {name: a, creationTimestamp: 2024-01-02T03:04:05Z}
spec:
  text: |
    literal block
    with --- inside
---

---   # an empty document above, a comment here
apiVersion: v1
kind: B
metadata: {name: b}
--- {apiVersion: v1, kind: C, metadata: {name: c}}
...
---
apiVersion: v1
kind: D
metadata: {name: d}
`;
  const { documents, diagnostics } = parsePolicySources([{ file: 'm.yaml', text }]);
  assert.deepEqual(diagnostics, []);
  const expected = parseAllDocuments(text)
    .filter((d) => d.contents !== null && !(isScalar(d.contents) && d.contents.value === null))
    .map((d) => text.slice(0, d.contents!.range![0]).split('\n').length);
  assert.deepEqual(documents.map((d) => d.origin.line), expected);
  assert.equal(documents[0]!.metadata.creationTimestamp, '2024-01-02T03:04:05Z', 'timestamps stay strings');
  assert.equal((documents[0]!.body.spec as { text: string }).text, 'literal block\nwith --- inside\n');
});

test('merge keys are honoured and an alias bomb is refused with a diagnostic, not expanded', () => {
  const merged = parsePolicySources([{ file: 'merge.yaml', text: 'base: &b {namespace: foo}\n---\napiVersion: v1\nkind: X\nmetadata:\n  <<: {namespace: foo}\n  name: m\n' }]);
  assert.equal(merged.documents.find((d) => d.metadata.name === 'm')?.metadata.namespace, 'foo');
  const lines = ['a0: &a0 [x, x, x, x, x, x, x, x, x, x]'];
  for (let i = 1; i < 12; i++) lines.push(`a${i}: &a${i} [${Array(10).fill(`*a${i - 1}`).join(', ')}]`);
  const bomb = `apiVersion: v1\nkind: X\nmetadata: {name: bomb}\n${lines.join('\n')}\n`;
  const { documents, diagnostics } = parsePolicySources([{ file: 'bomb.yaml', text: bomb }]);
  assert.equal(documents.length, 0);
  assert.equal(diagnostics[0]?.code, 'PRT_YAML_SYNTAX');
  assert.match(diagnostics[0]!.message, /alias/i);
});
