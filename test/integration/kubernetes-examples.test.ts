// examples/kubernetes stays what the commands produce today: each generated manifest is regenerated with
// the command examples/kubernetes/README.md shows and must be byte-identical (no drift), and every
// manifest there, hand-written or generated, matches the Kubernetes schema.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { repoRoot } from '../helpers/paths.js';
import { unknownFieldProblems, validateKubernetesObject } from '../helpers/kube-schema.js';

const root = repoRoot();
const mainJs = join(root, 'dist', 'src', 'main.js');
const examples = join(root, 'examples', 'kubernetes');

/** Generated file -> the portcullis arguments that generate it (as in examples/kubernetes/README.md). */
const generated: Record<string, string[]> = {
  'injected/service-a.yaml': ['inject', '-f', 'examples/kubernetes/app/service-a.yaml', '--image', 'portcullis:0.1.0'],
  'injected/service-b.yaml': ['inject', '-f', 'examples/kubernetes/app/service-b.yaml', '--image', 'portcullis:0.1.0'],
  'injected/linkerd-service-b.yaml': ['inject', '-f', 'examples/kubernetes/linkerd/service-b.yaml', '--image', 'portcullis:0.1.0'],
  'webhook/install.yaml': ['webhook', 'manifests', '--cert-manager', '--image', 'portcullis:0.1.0'],
};

for (const [file, args] of Object.entries(generated)) {
  test(`examples/kubernetes/${file} is what \`portcullis ${args.join(' ')}\` prints today`, () => {
    const r = spawnSync(process.execPath, [mainJs, ...args], { cwd: root, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(readFileSync(join(examples, file), 'utf8'), r.stdout, `examples/kubernetes/${file} drifted: regenerate it with the command in examples/kubernetes/README.md`);
  });
}

test('the README shows exactly those commands', () => {
  const readme = readFileSync(join(examples, 'README.md'), 'utf8');
  for (const [file, args] of Object.entries(generated)) assert.ok(readme.includes(`portcullis ${args.join(' ')} > examples/kubernetes/${file}`), `README lacks the command for ${file}`);
});

test('every manifest in examples/kubernetes matches the Kubernetes schema', async () => {
  let count = 0;
  for (const dir of readdirSync(examples, { withFileTypes: true }).filter((d) => d.isDirectory())) {
    for (const name of readdirSync(join(examples, dir.name)).filter((n) => n.endsWith('.yaml'))) {
      for (const doc of parseAllDocuments(readFileSync(join(examples, dir.name, name), 'utf8'))) {
        const obj = doc.toJS() as { apiVersion?: string };
        if (String(obj.apiVersion).startsWith('cert-manager.io/')) continue; // a CRD: not in the core schema
        await validateKubernetesObject(obj);
        count++;
      }
    }
  }
  assert.ok(count >= 15, `validated ${count} objects`);
});

test('injecting an already injected example changes nothing (the webhook would skip those pods too)', () => {
  for (const file of ['injected/service-a.yaml', 'injected/service-b.yaml', 'injected/linkerd-service-b.yaml']) {
    const r = spawnSync(process.execPath, [mainJs, 'inject', '-f', join(examples, file), '--image', 'portcullis:0.1.0'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, readFileSync(join(examples, file), 'utf8'));
    assert.match(r.stderr, /nothing changed/);
  }
});

test('no manifest the commands generate has a field the Kubernetes API does not know', async () => {
  const objects: unknown[] = [];
  for (const args of Object.values(generated)) {
    const r = spawnSync(process.execPath, [mainJs, ...args], { cwd: root, encoding: 'utf8' });
    for (const doc of parseAllDocuments(r.stdout)) {
      const obj = doc.toJS() as { apiVersion?: string };
      if (!String(obj.apiVersion).startsWith('cert-manager.io/')) objects.push(obj);
    }
  }
  const fixtures = join(root, 'test', 'fixtures', 'kubernetes');
  for (const name of readdirSync(fixtures).filter((n) => n.endsWith('.yaml') && n !== 'refused.yaml')) {
    const r = spawnSync(process.execPath, [mainJs, 'inject', '-f', join(fixtures, name), '--capture'], { cwd: root, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    for (const doc of parseAllDocuments(r.stdout)) objects.push(doc.toJS());
  }
  assert.deepEqual(await unknownFieldProblems(objects, root), []);
  // The check itself: a misplaced field is caught.
  const bad = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'x' }, spec: { containers: [{ name: 'a', restartPolicyy: 'Always' }] } };
  assert.match((await unknownFieldProblems([bad], root)).join('\n'), /restartPolicyy/);
});

test('portcullis inject reads standard input, and exits 1 with every problem when a pod is refused', () => {
  const fixtures = join(root, 'test', 'fixtures', 'kubernetes');
  const stdin = spawnSync(process.execPath, [mainJs, 'inject', '-f', '-'], { input: readFileSync(join(fixtures, 'cronjob.yaml')), encoding: 'utf8' });
  assert.equal(stdin.status, 0, stdin.stderr);
  assert.match(stdin.stdout, /restartPolicy: Always/);
  assert.match(stdin.stderr, /^injected: CronJob hello$/m);
  const refused = spawnSync(process.execPath, [mainJs, 'inject', '-f', join(fixtures, 'refused.yaml')], { encoding: 'utf8' });
  assert.equal(refused.status, 1);
  assert.equal(refused.stdout, '', 'nothing written');
  assert.match(refused.stderr, /^refused: Pod bad-annotations \(annotation portcullis\.dev\/upstrem-port: unknown annotation/m);
  assert.match(refused.stderr, /portcullis inject: nothing written; fix these first:/);
  const missing = spawnSync(process.execPath, [mainJs, 'inject'], { encoding: 'utf8' });
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /-f FILE \(or -f - for standard input\) is required/);
});
