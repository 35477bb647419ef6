import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compilePolicies } from '../policy/compile.js';
import type { PolicySnapshot } from '../policy/snapshot.js';
import { createMetrics } from '../observe/metrics.js';
import { defaultCompileOptions } from './load.js';
import { createPolicyStore, type PolicyStore } from './policy-store.js';

const options = (() => { const o = defaultCompileOptions(); o.workload.namespace = 'shop'; return o; })();

function policy(name: string, methods: string[], count = 1): string {
  const docs: string[] = [];
  for (let i = 0; i < count; i++) {
    docs.push(`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ${name}-${i}, namespace: shop}
spec:
  rules:
  - to:
    - operation: {methods: [${methods.join(', ')}]}
`);
  }
  return docs.join('---\n');
}

const broken = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: broken, namespace: shop}
spec:
  action: MAYBE
`;

async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'portcullis-store-'));
}

async function until(what: string, cond: () => boolean, attempts = 200, everyMs = 25): Promise<void> {
  for (let i = 0; i < attempts; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  assert.fail(`timed out waiting for: ${what}`);
}

async function reloadCount(metrics: ReturnType<typeof createMetrics>, result: string): Promise<number> {
  const m = await metrics.registry.getSingleMetric('portcullis_policy_reload_total')?.get();
  return m?.values.find((v) => v.labels['result'] === result)?.value ?? 0;
}

async function open(dir: string, extra: Partial<Parameters<typeof createPolicyStore>[0]> = {}): Promise<{ store: PolicyStore; metrics: ReturnType<typeof createMetrics> }> {
  const metrics = createMetrics({ processMetrics: false });
  const r = await createPolicyStore({ paths: [dir], options, metrics, debounceMs: 50, pollIntervalMs: 200, ...extra });
  if ('diagnostics' in r) assert.fail(JSON.stringify(r.diagnostics));
  return { store: r.store, metrics };
}

test('start refuses a set with errors, an empty set and a missing path', async () => {
  const dir = await tempDir();
  try {
    const metrics = createMetrics({ processMetrics: false });
    const empty = await createPolicyStore({ paths: [dir], options, metrics, watch: false });
    assert.ok('diagnostics' in empty);
    assert.equal(empty.diagnostics[0]?.code, 'PRT_POLICY_EMPTY_SET');

    await writeFile(join(dir, 'p.yaml'), broken);
    const bad = await createPolicyStore({ paths: [dir], options, metrics, watch: false });
    assert.ok('diagnostics' in bad);
    assert.ok(bad.diagnostics.some((d) => d.severity === 'error' && d.origin.file === join(dir, 'p.yaml')), JSON.stringify(bad.diagnostics));
    assert.equal(await reloadCount(metrics, 'failure'), 2);

    const missing = await createPolicyStore({ paths: [join(dir, 'nope')], options, watch: false });
    assert.ok('diagnostics' in missing);
    assert.equal(missing.diagnostics[0]?.code, 'PRT_POLICY_READ');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a good change on disk is picked up by the watcher and swapped whole', async () => {
  const dir = await tempDir();
  await writeFile(join(dir, 'p.yaml'), policy('a', ['GET']));
  const { store, metrics } = await open(dir);
  try {
    const first = store.current();
    assert.equal(first.documents.length, 1);
    assert.ok(Object.isFrozen(first));
    const swaps: [string, string][] = [];
    store.onSwap((next, prev) => swaps.push([prev.revision, next.revision]));

    await writeFile(join(dir, 'p.yaml'), policy('a', ['GET', 'POST'], 2));
    await until('swap', () => swaps.length > 0);
    const second = store.current();
    assert.notEqual(second.revision, first.revision);
    assert.equal(second.documents.length, 2);
    assert.deepEqual(swaps[0], [first.revision, second.revision]);
    const st = store.status();
    assert.equal(st.revision, second.revision);
    assert.equal(st.lastReload.result, 'success');
    assert.equal(st.documents.length, 2);
    assert.ok(await reloadCount(metrics, 'success') >= 2);
    const text = await metrics.scrape();
    assert.match(text, new RegExp(`portcullis_policy_revision_info\\{revision="${second.revision}"\\} 1`));
    assert.doesNotMatch(text, new RegExp(`revision="${first.revision}"`));

    // A file added to the directory counts as a change too.
    await writeFile(join(dir, 'q.yml'), policy('b', ['PUT']));
    await until('second swap', () => swaps.length > 1);
    assert.equal(store.current().documents.length, 3);
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('a bad change keeps the last good snapshot, counts the failure and shows it in status', async () => {
  const dir = await tempDir();
  await writeFile(join(dir, 'p.yaml'), policy('a', ['GET']));
  const { store, metrics } = await open(dir);
  try {
    const good = store.current();
    await writeFile(join(dir, 'p.yaml'), broken);
    await until('failed reload', () => store.status().lastReload.result === 'failure');
    assert.equal(store.current(), good, 'the same snapshot object stays in force');
    const st = store.status();
    assert.equal(st.revision, good.revision);
    assert.ok(st.lastReload.diagnostics.some((d) => d.severity === 'error' && d.origin.file === join(dir, 'p.yaml')));
    assert.ok(!Number.isNaN(Date.parse(st.lastReload.time)));
    assert.ok(await reloadCount(metrics, 'failure') >= 1);

    // Deleting every file is refused as well: an empty set is kept out.
    await rm(join(dir, 'p.yaml'));
    await until('empty set refused', () => store.status().lastReload.diagnostics.some((d) => d.code === 'PRT_POLICY_EMPTY_SET'));
    assert.equal(store.current(), good);

    // Fixing the file recovers.
    const successes = await reloadCount(metrics, 'success');
    await writeFile(join(dir, 'p.yaml'), policy('fixed', ['GET']));
    await until('recovery', () => store.current() !== good);
    // One write can raise two watch events; the second reload finds the same files and says `unchanged`.
    assert.ok(['success', 'unchanged'].includes(store.status().lastReload.result));
    assert.ok(await reloadCount(metrics, 'success') > successes);
    assert.equal(store.current().documents[0]?.name, 'fixed-0');
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('reload() without watching; an unchanged set is reported as unchanged', async () => {
  const dir = await tempDir();
  await writeFile(join(dir, 'p.yaml'), policy('a', ['GET']));
  const { store, metrics } = await open(dir, { watch: false });
  try {
    const r1 = await store.reload();
    assert.equal(r1.result, 'unchanged');
    await writeFile(join(dir, 'p.yaml'), policy('a', ['DELETE']));
    const [r2, r3] = await Promise.all([store.reload(), store.reload()]);
    assert.equal(r2.result, 'success');
    assert.equal(r3.result, 'unchanged', 'the coalesced second call runs once more and finds nothing new');
    assert.equal(r3.revision, r2.revision);
    assert.equal(store.current().revision, r2.revision);
    assert.equal(await reloadCount(metrics, 'unchanged'), 2);
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('no half-loaded set: current() under concurrent rewrites only ever returns complete revisions', async () => {
  const dir = await tempDir();
  const file = join(dir, 'p.yaml');
  // Each version has a different number of documents, so a mix of two versions cannot pass as either.
  const versions = Array.from({ length: 12 }, (_, i) => policy(`v${i}`, i % 2 ? ['GET'] : ['POST'], 1 + (i % 4) * 3));
  const expected = new Map<string, number>();
  for (const text of versions) {
    const r = compilePolicies([{ file, text }], options);
    assert.ok(r.snapshot, JSON.stringify(r.diagnostics));
    expected.set(r.snapshot.revision, r.snapshot.documents.length);
  }
  await writeFile(file, versions[0] as string);
  const { store } = await open(dir, { debounceMs: 5, pollIntervalMs: 20 });
  const seen = new Set<PolicySnapshot>();
  let reading = true;
  let reads = 0;
  const hammer = (async () => {
    while (reading && reads < 5_000_000) {
      for (let i = 0; i < 200; i++) { seen.add(store.current()); reads++; }
      await new Promise((r) => setImmediate(r));
    }
  })();
  try {
    for (let round = 0; round < 3; round++) {
      for (let i = 1; i < versions.length; i++) {
        const text = versions[i] as string;
        if (i % 2) {
          await writeFile(file, text); // in place: truncate + write
        } else {
          await writeFile(`${file}.tmp`, text);
          await rename(`${file}.tmp`, file); // atomic replace
        }
        await new Promise((r) => setTimeout(r, i % 3 === 0 ? 1 : 15));
      }
    }
    await writeFile(file, versions[versions.length - 1] as string);
    await store.reload();
  } finally {
    reading = false;
    await hammer;
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
  assert.ok(reads > 1000, `hammer ran ${reads} reads`);
  assert.ok(seen.size >= 2, `saw ${seen.size} snapshots`);
  for (const s of seen) {
    assert.ok(expected.has(s.revision), `revision ${s.revision} is not one of the written versions`);
    assert.equal(s.documents.length, expected.get(s.revision));
    assert.ok(Object.isFrozen(s) && Object.isFrozen(s.documents));
  }
  assert.equal(store.current().documents.length, expected.get(store.current().revision));
});

test('a busy neighbour (a log written every 10 ms in the policy directory) never holds a reload back', async () => {
  const dir = await tempDir();
  await writeFile(join(dir, 'p.yaml'), policy('p', ['GET']));
  // A large debounce makes the old failure mode certain: every neighbour write restarted it.
  const { store } = await open(dir, { debounceMs: 300, pollIntervalMs: 0 });
  const before = store.current().revision;
  let writes = 0;
  const noisy = setInterval(() => { void writeFile(join(dir, 'decisions.log'), `line ${writes++}\n`, { flag: 'a' }); }, 10);
  try {
    await writeFile(join(dir, 'p.yaml'), policy('p', ['POST']));
    await until('the policy change to be applied while the log is being written', () => store.current().revision !== before, 120, 25);
    assert.ok(writes > 10, 'the neighbour kept writing during the reload');
  } finally {
    clearInterval(noisy);
    store.close();
    await rm(dir, { recursive: true, force: true });
  }
});
