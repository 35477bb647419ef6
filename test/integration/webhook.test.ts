// The admission webhook end to end: `portcullis certs webhook` issues the serving certificate, a real
// `portcullis webhook` process serves HTTPS, AdmissionReview JSON (as the API server sends it) is POSTed
// with the printed caBundle as the only trust, and the returned JSON Patch is applied with fast-json-patch:
// the pod must equal what `portcullis inject` makes of the same manifest.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import jsonpatch from 'fast-json-patch';
import { repoRoot } from '../helpers/paths.js';
import { validateKubernetesObject } from '../helpers/kube-schema.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const root = repoRoot();
const mainJs = join(root, 'dist', 'src', 'main.js');
const fixtures = join(root, 'test', 'fixtures', 'kubernetes');
const injectorFlags = ['--image', 'portcullis:test', '--capture-image', 'portcullis-capture:test'];
const serviceName = 'portcullis-webhook.portcullis-system.svc';

let dir: string;
let caPem: string;
let child: ChildProcess;
let port: number;
let logs = '';

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pcl-webhook-'));
  const certs = spawnSync(process.execPath, [mainJs, 'certs', 'webhook', '--out', dir], { encoding: 'utf8' });
  assert.equal(certs.status, 0, certs.stderr);
  caPem = Buffer.from(certs.stdout.trim(), 'base64').toString('utf8');
  assert.equal(caPem, readFileSync(join(dir, 'ca.crt'), 'utf8'), 'stdout is the caBundle: base64 of ca.crt');
  child = spawn(process.execPath, [mainJs, 'webhook', '--listen', '127.0.0.1:0', '--tls-cert', join(dir, 'tls.crt'), '--tls-key', join(dir, 'tls.key'), ...injectorFlags], { stdio: ['ignore', 'ignore', 'pipe'] });
  port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`webhook did not start: ${logs}`)), 15_000);
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      logs += chunk;
      const m = /"msg":"webhook listening","address":"127\.0\.0\.1:(\d+)"/.exec(logs);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`webhook exited ${code}: ${logs}`)); });
  });
});

after(() => {
  child?.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
});

/** POST like the API server: HTTPS to the Service name, verified against the caBundle only. */
function post(path: string, body: string, contentType = 'application/json'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'POST', ca: caPem, servername: serviceName, headers: { 'content-type': contentType, 'content-length': Buffer.byteLength(body) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** The Pod a controller creates from a template (generateName, namespace, ownerReferences), as in the request. */
function podFrom(template: Obj, owner: string, namespace: string): Obj {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      ...(template.metadata ?? {}),
      generateName: `${owner}-7d4b9c5f6-`,
      namespace,
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: `${owner}-7d4b9c5f6`, uid: randomUUID(), controller: true, blockOwnerDeletion: true }],
    },
    spec: template.spec,
  };
}

function admissionReview(pod: Obj, operation = 'CREATE', uid = randomUUID()): Obj {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid,
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      requestKind: { group: '', version: 'v1', kind: 'Pod' },
      requestResource: { group: '', version: 'v1', resource: 'pods' },
      namespace: pod.metadata.namespace,
      operation,
      userInfo: { username: 'system:serviceaccount:kube-system:replicaset-controller', uid: randomUUID(), groups: ['system:serviceaccounts', 'system:serviceaccounts:kube-system', 'system:authenticated'] },
      object: pod,
      oldObject: null,
      dryRun: false,
      options: { kind: 'CreateOptions', apiVersion: 'meta.k8s.io/v1' },
    },
  };
}

function templateOf(doc: Obj): Obj | undefined {
  if (doc.kind === 'Pod') return doc;
  if (doc.kind === 'CronJob') return doc.spec.jobTemplate.spec.template;
  return doc.spec?.template;
}

function injectCli(file: string): Obj[] {
  const r = spawnSync(process.execPath, [mainJs, 'inject', '-f', file, ...injectorFlags], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return parseAllDocuments(r.stdout).map((d) => d.toJS() as Obj);
}

const cases = ['deployment.yaml', 'statefulset.yaml', 'cronjob.yaml', 'job-and-daemonset.yaml', 'pod-init-containers.yaml', 'deployment-native-sidecar.yaml', 'pod-security-context.yaml'];

for (const name of cases) {
  test(`${name}: the webhook's JSON Patch gives the same pod as portcullis inject`, async () => {
    const file = join(fixtures, name);
    const originals = parseAllDocuments(readFileSync(file, 'utf8')).map((d) => d.toJS() as Obj);
    const injected = injectCli(file);
    let checked = 0;
    for (const [i, doc] of originals.entries()) {
      const template = templateOf(doc);
      if (!template) continue;
      const owner = String(doc.metadata?.name ?? 'pod');
      const pod = podFrom(template, owner, 'shop');
      const uid = randomUUID();
      const res = await post('/inject', JSON.stringify(admissionReview(pod, 'CREATE', uid)));
      assert.equal(res.status, 200, res.body);
      const review = JSON.parse(res.body) as Obj;
      assert.equal(review.apiVersion, 'admission.k8s.io/v1');
      assert.equal(review.kind, 'AdmissionReview');
      assert.equal(review.response.uid, uid, 'uid echoed');
      assert.equal(review.response.allowed, true);
      assert.equal(review.response.patchType, 'JSONPatch');
      const patch = JSON.parse(Buffer.from(review.response.patch, 'base64').toString('utf8')) as jsonpatch.Operation[];
      assert.equal(jsonpatch.validate(patch, pod), undefined, 'the patch is valid RFC 6902 for this pod');
      const patched = jsonpatch.applyPatch(jsonpatch.deepClone(pod), patch, true, false).newDocument as Obj;
      const expected = podFrom(templateOf(injected[i] as Obj) as Obj, owner, 'shop');
      expected.metadata.ownerReferences = pod.metadata.ownerReferences;
      assert.deepEqual(patched, expected);
      await validateKubernetesObject(patched);
      checked++;
    }
    assert.ok(checked > 0);
  });
}

test('a pod that is already injected, opted out, or not a CREATE gets allowed without a patch', async () => {
  const [injectedPod] = injectCli(join(fixtures, 'pod-init-containers.yaml')) as [Obj];
  const optedOut = parseAllDocuments(readFileSync(join(fixtures, 'skipped.yaml'), 'utf8'))[0]!.toJS() as Obj;
  for (const [pod, op] of [[injectedPod, 'CREATE'], [optedOut, 'CREATE'], [injectedPod, 'UPDATE']] as const) {
    const uid = randomUUID();
    const res = await post('/inject', JSON.stringify(admissionReview({ ...pod, metadata: { ...pod.metadata, namespace: 'shop' } }, op, uid)));
    assert.equal(res.status, 200);
    const review = JSON.parse(res.body) as Obj;
    assert.deepEqual(review.response, { uid, allowed: true });
  }
});

test('invalid annotations are refused with a message naming them', async () => {
  const bad = parseAllDocuments(readFileSync(join(fixtures, 'refused.yaml'), 'utf8'))[0]!.toJS() as Obj;
  const uid = randomUUID();
  const res = await post('/inject', JSON.stringify(admissionReview({ ...bad, metadata: { ...bad.metadata, namespace: 'shop' } }, 'CREATE', uid)));
  assert.equal(res.status, 200);
  const review = JSON.parse(res.body) as Obj;
  assert.equal(review.response.uid, uid);
  assert.equal(review.response.allowed, false);
  assert.equal(review.response.patch, undefined);
  assert.equal(review.response.status.code, 400);
  assert.match(review.response.status.message, /^portcullis: annotation portcullis\.dev\/upstrem-port: unknown annotation/);
  assert.match(review.response.status.message, /annotation portcullis\.dev\/mode: must be "enforce" or "audit", not "permissive"/);
  // The child's log arrives over a pipe, asynchronously: wait for it (bounded) rather than race it.
  for (let i = 0; i < 100 && !/"outcome":"refused"/.test(logs); i++) await new Promise((r) => setTimeout(r, 20));
  assert.match(logs, /"outcome":"refused"/);
});

test('capture warns about app probes it would break, through AdmissionResponse warnings', async () => {
  const pod = {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name: 'probed', namespace: 'shop', annotations: { 'portcullis.dev/capture': 'iptables' } },
    spec: { containers: [{ name: 'app', image: 'app:1', ports: [{ name: 'http', containerPort: 8080 }], readinessProbe: { httpGet: { path: '/healthz', port: 'http' } } }] },
  };
  const res = await post('/inject', JSON.stringify(admissionReview(pod)));
  const review = JSON.parse(res.body) as Obj;
  assert.equal(review.response.allowed, true);
  assert.equal(review.response.warnings.length, 1);
  assert.match(review.response.warnings[0], /^portcullis: container app is probed on port 8080/);
  assert.ok(review.response.warnings[0].length <= 120);
});

test('what is not an AdmissionReview gets a 4xx and no decision', async () => {
  assert.equal((await post('/inject', '{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"x"}}')).status, 400);
  assert.equal((await post('/inject', 'not json')).status, 400);
  assert.equal((await post('/inject', '{}', 'text/plain')).status, 415);
  assert.equal((await post('/other', '{}')).status, 404);
});

test('the serving certificate is only good for the Service name', async () => {
  await assert.rejects(new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/healthz', ca: caPem, servername: 'other.portcullis-system.svc' }, resolve);
    req.on('error', reject);
    req.end();
  }), /does not match certificate's altnames|Hostname\/IP does not match/);
});

test('the install manifests match the Kubernetes schema and point at the webhook', async () => {
  const b64 = Buffer.from(caPem).toString('base64');
  for (const flags of [['--ca-bundle', b64], ['--cert-manager']]) {
    const r = spawnSync(process.execPath, [mainJs, 'webhook', 'manifests', ...flags, ...injectorFlags], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const docs = parseAllDocuments(r.stdout).map((d) => d.toJS() as Obj);
    for (const d of docs) if (!String(d.apiVersion).startsWith('cert-manager.io/')) await validateKubernetesObject(d);
    const mwc = docs.find((d) => d.kind === 'MutatingWebhookConfiguration') as Obj;
    for (const w of mwc.webhooks as Obj[]) {
      assert.deepEqual(w.clientConfig.service, { name: 'portcullis-webhook', namespace: 'portcullis-system', path: '/inject', port: 443 });
      assert.equal(w.failurePolicy, 'Fail');
      assert.deepEqual(w.admissionReviewVersions, ['v1']);
      if (flags[0] === '--ca-bundle') assert.equal(w.clientConfig.caBundle, b64);
      else assert.equal(w.clientConfig.caBundle, undefined);
    }
    if (flags[0] === '--cert-manager') assert.equal(mwc.metadata.annotations['cert-manager.io/inject-ca-from'], 'portcullis-system/portcullis-webhook');
    const deploy = docs.find((d) => d.kind === 'Deployment') as Obj;
    assert.deepEqual(deploy.spec.template.spec.containers[0].args.slice(-4), injectorFlags, 'the webhook runs with the same sidecar flags');
  }
});
