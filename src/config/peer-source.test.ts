import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMetrics } from '../observe/metrics.js';
import { defaultCompileOptions } from './load.js';
import { filePeerSource, type PeerSource } from './peer-source.js';
import { parsePeerFile } from './peers-file.js';
import { createPolicyStore, type PolicyStore } from './policy-store.js';

const options = (() => { const o = defaultCompileOptions(); o.workload.namespace = 'shop'; return o; })();
const policy = (methods: string) => `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: p, namespace: shop}
spec:
  rules:
  - to: [{operation: {methods: [${methods}]}}]
`;
const registry = (...sas: string[]) => `peers:\n${sas.map((sa) => `- spiffeId: spiffe://cluster.local/ns/shop/sa/${sa}\n  labels: {app: ${sa}}\n`).join('')}`;
const BROKEN = 'peers:\n- spiffeId: spiffe://cluster.local/ns/shop/sa/web\n  namespace: other\n';

/** A source whose text the test sets; watch is never called (the tests reload by hand). */
function memorySource(initial: string): PeerSource & { text: string } {
  const source = {
    text: initial,
    description: 'memory',
    read: () => Promise.resolve(parsePeerFile(source.text, 'peers.yaml')),
    watch: () => () => undefined,
  };
  return source;
}

async function metricValue(metrics: ReturnType<typeof createMetrics>, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = await metrics.registry.getSingleMetric(name)?.get();
  return m?.values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))?.value ?? 0;
}

async function until(what: string, cond: () => boolean): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.fail(`timed out waiting for: ${what}`);
}

test('a refused registry at start refuses the store', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'portcullis-peers-'));
  try {
    await writeFile(join(dir, 'p.yaml'), policy('GET'));
    const metrics = createMetrics({ processMetrics: false });
    const r = await createPolicyStore({ paths: [dir], options, metrics, watch: false, peers: memorySource(BROKEN) });
    assert.ok('diagnostics' in r);
    assert.equal(r.diagnostics[0]?.code, 'PRT_PEERS_IDENTITY_MISMATCH');
    assert.equal(r.diagnostics[0]?.origin.line, 3);
    assert.equal(await metricValue(metrics, 'portcullis_peer_registry_reload_total', { result: 'failure' }), 1);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a new registry recompiles; a refused one keeps the last good, says so on status and in metrics; policies still reload', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'portcullis-peers-'));
  let store: PolicyStore | undefined;
  try {
    await writeFile(join(dir, 'p.yaml'), policy('GET'));
    const metrics = createMetrics({ processMetrics: false });
    const source = memorySource(registry('web'));
    const r = await createPolicyStore({ paths: [dir], options, metrics, watch: false, peers: source });
    if ('diagnostics' in r) assert.fail(JSON.stringify(r.diagnostics));
    store = r.store;
    const first = store.current();
    assert.deepEqual([...(first.options.peers?.byId.keys() ?? [])], ['spiffe://cluster.local/ns/shop/sa/web']);
    assert.equal(store.status().peers?.identities, 1);
    assert.equal(store.status().peers?.source, 'memory');

    source.text = registry('web', 'api');
    assert.equal((await store.reload()).result, 'success');
    assert.notEqual(store.current().revision, first.revision);
    assert.equal(store.current().options.peers?.byId.size, 2);
    assert.equal(store.status().peers?.identities, 2);
    assert.equal(store.status().peers?.lastReload.result, 'success');
    assert.equal(await metricValue(metrics, 'portcullis_peer_registry_reload_total', { result: 'success' }), 2);

    source.text = BROKEN;
    const kept = store.current();
    assert.equal((await store.reload()).result, 'unchanged');
    assert.equal(store.current(), kept, 'the snapshot in force stays');
    const status = store.status().peers;
    assert.equal(status?.lastReload.result, 'failure');
    assert.equal(status?.lastReload.diagnostics[0]?.code, 'PRT_PEERS_IDENTITY_MISMATCH');
    assert.equal(status?.identities, 2, 'the registry in force is the last good one');
    assert.equal(await metricValue(metrics, 'portcullis_peer_registry_refused'), 1);

    // A policy change applies meanwhile, compiled with the last good registry.
    await writeFile(join(dir, 'p.yaml'), policy('GET, POST'));
    assert.equal((await store.reload()).result, 'success');
    assert.equal(store.current().options.peers?.byId.size, 2);
    assert.equal(store.status().peers?.lastReload.result, 'failure');

    // The same content as the registry in force is no change; the refusal is over.
    source.text = registry('web', 'api');
    assert.equal((await store.reload()).result, 'unchanged');
    assert.equal(store.status().peers?.lastReload.result, 'unchanged');
    assert.equal(await metricValue(metrics, 'portcullis_peer_registry_refused'), 0);

    // New workload facts keep the registry of the source.
    const report = await store.setOptions({ ...options, workload: { ...options.workload, labels: { app: 'x' } } });
    assert.equal(report.result, 'success');
    assert.equal(store.current().options.peers?.byId.size, 2);
  } finally {
    await store?.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('the file source is watched: replacing the file (rename, as a ConfigMap does) reloads the registry', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'portcullis-peers-'));
  let store: PolicyStore | undefined;
  try {
    await writeFile(join(dir, 'p.yaml'), policy('GET'));
    const peersDir = join(dir, 'registry');
    await mkdir(peersDir, { recursive: true });
    const file = join(peersDir, 'peers.yaml');
    await writeFile(file, registry('web'));
    const r = await createPolicyStore({ paths: [join(dir, 'p.yaml')], options, debounceMs: 20, pollIntervalMs: 0, peers: filePeerSource(file, { pollIntervalMs: 100 }) });
    if ('diagnostics' in r) assert.fail(JSON.stringify(r.diagnostics));
    store = r.store;
    const s = store;
    assert.equal(s.status().peers?.source, `file ${file}`);
    await writeFile(join(peersDir, 'next.tmp'), registry('web', 'api', 'db'));
    await rename(join(peersDir, 'next.tmp'), file);
    await until('the new registry is in force', () => s.status().peers?.identities === 3);
    assert.equal(s.current().options.peers?.byId.size, 3);
    await writeFile(join(peersDir, 'next.tmp'), 'peers: [\n');
    await rename(join(peersDir, 'next.tmp'), file);
    await until('the refused file is reported', () => s.status().peers?.lastReload.result === 'failure');
    assert.equal(s.current().options.peers?.byId.size, 3);
    assert.equal(s.status().peers?.lastReload.diagnostics[0]?.code, 'PRT_PEERS_YAML');
  } finally {
    await store?.close();
    await rm(dir, { recursive: true, force: true });
  }
});
