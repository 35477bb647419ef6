import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDownwardApiMap, unquoteGo } from './downward-api.js';
import { loadConfig } from './load.js';

test('values are unquoted the way Go quoted them (%q)', () => {
  assert.equal(unquoteGo('"plain"'), 'plain');
  assert.equal(unquoteGo('""'), '');
  assert.equal(unquoteGo('"a \\"quoted\\" name"'), 'a "quoted" name');
  assert.equal(unquoteGo('"back\\\\slash"'), 'back\\slash');
  assert.equal(unquoteGo('"line1\\nline2\\ttab\\r"'), 'line1\nline2\ttab\r');
  assert.equal(unquoteGo('"bell\\a\\b\\f\\v"'), 'bell\x07\b\f\v');
  assert.equal(unquoteGo('"\\x00\\x7f"'), '\x00\x7f');
  assert.equal(unquoteGo('"caf\u00e9 \u65e5\u672c"'), 'café 日本', 'printable Unicode is written as is');
  assert.equal(unquoteGo('"\\u00e9\\U0001f600"'), 'é😀');
  assert.equal(unquoteGo('"\\303\\251"'), 'é', 'octal bytes assemble UTF-8');
  for (const bad of ['plain', '"unterminated', '"bad \\q escape"', '"early " quote"', '"\\x4"', '"\\ud800"']) assert.equal(unquoteGo(bad), undefined, bad);
});

test('a labels file as the kubelet writes it, and bad lines with their numbers', () => {
  const annotation = JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'x' } }) + '\n';
  const goQuoted = '"' + annotation.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n') + '"';
  const text = `app="orders"\nkubectl.kubernetes.io/last-applied-configuration=${goQuoted}\nversion="v1"`;
  const r = parseDownwardApiMap(text, 'annotations');
  assert.deepEqual(r.problems, []);
  assert.deepEqual(r.values, { app: 'orders', 'kubectl.kubernetes.io/last-applied-configuration': annotation, version: 'v1' });
  const bad = parseDownwardApiMap('app="ok"\nno-equals\nteam=unquoted\n', 'labels');
  assert.deepEqual(bad.problems.map((p) => p.line), [2, 3]);
  assert.deepEqual(bad.values, { app: 'ok' });
});

test('run --workload-from takes namespace, labels and annotations from the directory', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pcl-downward-'));
  try {
    const podinfo = join(dir, 'podinfo');
    mkdirSync(podinfo);
    writeFileSync(join(podinfo, 'namespace'), 'shop');
    writeFileSync(join(podinfo, 'labels'), 'app="orders"\nversion="v2"');
    writeFileSync(join(podinfo, 'annotations'), 'config.linkerd.io/default-inbound-policy="deny"');
    const base = ['--listener', 'listen=0.0.0.0:8443,upstream=http://127.0.0.1:8080', '--policies', '/p', '--cert', '/c', '--key', '/k', '--trust-bundle', '/b'];
    const deps = { readFile: (p: string) => readFile(p, 'utf8'), cwd: dir };
    const ok = await loadConfig([...base, '--workload-from', 'podinfo'], deps);
    assert.ok('config' in ok, JSON.stringify(ok));
    assert.equal(ok.config.workloadFrom, podinfo, 'relative to the working directory');
    assert.deepEqual(ok.config.compile.workload.namespace, 'shop');
    assert.deepEqual(ok.config.compile.workload.labels, { app: 'orders', version: 'v2' });
    assert.deepEqual(ok.config.compile.workload.annotations, { 'config.linkerd.io/default-inbound-policy': 'deny' });

    const conflict = await loadConfig([...base, '--workload-from', podinfo, '--labels', 'app=other'], deps);
    assert.ok('diagnostics' in conflict);
    assert.match(conflict.diagnostics.map((d) => `${d.code} ${d.message}`).join('\n'), /PRT_CONFIG_CONFLICT 'labels' comes from workloadFrom/);

    const missing = await loadConfig([...base, '--workload-from', join(dir, 'nowhere')], deps);
    assert.ok('diagnostics' in missing);
    assert.match(missing.diagnostics[0]!.message, /cannot read the namespace/);

    writeFileSync(join(podinfo, 'labels'), 'app=orders');
    const malformed = await loadConfig([...base, '--workload-from', podinfo], deps);
    assert.ok('diagnostics' in malformed);
    assert.equal(malformed.diagnostics[0]!.origin.file, join(podinfo, 'labels'));
    assert.match(malformed.diagnostics[0]!.message, /the value of 'app' is not a quoted string/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
