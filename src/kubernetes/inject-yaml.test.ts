import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { repoRoot } from '../../test/helpers/paths.js';
import { validateKubernetesObject } from '../../test/helpers/kube-schema.js';
import { injectYaml } from './inject-yaml.js';
import { injectorOptionsFrom } from './options.js';
import type { InjectorOptions } from './sidecar.js';

const fixtures = join(repoRoot(), 'test', 'fixtures', 'kubernetes');
const read = (name: string) => readFileSync(join(fixtures, name), 'utf8');
const options = injectorOptionsFrom({ image: 'portcullis:test', 'capture-image': 'portcullis-capture:test' }) as InjectorOptions;

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const docsOf = (text: string): Obj[] => parseAllDocuments(text).map((d) => d.toJS() as Obj);

function inject(text: string) {
  const r = injectYaml(text, options);
  assert.ok(r.ok, r.ok ? '' : r.error);
  return r;
}

function podTemplates(doc: Obj): Obj[] {
  if (doc.kind === 'List') return doc.items.flatMap(podTemplates);
  if (doc.kind === 'Pod') return [doc];
  if (doc.kind === 'CronJob') return [doc.spec.jobTemplate.spec.template];
  if (doc.spec?.template) return [doc.spec.template];
  return [];
}

const injectedFixtures = ['deployment.yaml', 'statefulset.yaml', 'cronjob.yaml', 'job-and-daemonset.yaml', 'pod-init-containers.yaml', 'deployment-native-sidecar.yaml', 'pod-security-context.yaml', 'list.yaml'];

for (const name of injectedFixtures) {
  test(`${name}: every pod gets the native sidecar, the rest of the pod is unchanged, the output is schema-valid`, async () => {
    const source = read(name);
    const r = inject(source);
    assert.equal(r.changed, true);
    const before = docsOf(source);
    const after = docsOf(r.output);
    assert.equal(after.length, before.length);
    for (const [i, doc] of after.entries()) {
      await validateKubernetesObject(doc);
      const pods = podTemplates(doc);
      const originals = podTemplates(before[i] as Obj);
      for (const [j, pod] of pods.entries()) {
        const orig = originals[j] as Obj;
        const inits = pod.spec.initContainers as Obj[];
        const capture = inits[0]?.name === 'portcullis-capture';
        const sidecar = inits[capture ? 1 : 0] as Obj;
        assert.equal(sidecar.name, 'portcullis');
        assert.equal(sidecar.restartPolicy, 'Always');
        assert.equal(sidecar.image, 'portcullis:test');
        assert.deepEqual(sidecar.securityContext.capabilities, { drop: ['ALL'] });
        assert.equal(sidecar.securityContext.readOnlyRootFilesystem, true);
        assert.equal(sidecar.securityContext.runAsNonRoot, true);
        assert.ok(sidecar.resources.requests.cpu && sidecar.resources.limits.memory);
        for (const p of ['startupProbe', 'readinessProbe', 'livenessProbe']) assert.equal(sidecar[p].httpGet.port, 15021, p);
        // The admin listener stays on loopback; only the read-only status port is on the pod IP.
        assert.equal(sidecar.args[sidecar.args.indexOf('--admin') + 1], '127.0.0.1:15000');
        assert.equal(sidecar.args[sidecar.args.indexOf('--status-listen') + 1], '0.0.0.0:15021');
        // The pod's own init containers, containers and volumes keep their order and content.
        assert.deepEqual(inits.slice(capture ? 2 : 1), orig.spec.initContainers ?? []);
        assert.deepEqual(pod.spec.containers, orig.spec.containers);
        const added = ['portcullis-podinfo', 'portcullis-policies', 'portcullis-mesh-policies', 'portcullis-certs', ...(capture ? ['portcullis-xtables'] : [])];
        assert.deepEqual((pod.spec.volumes as Obj[]).map((v) => v.name), [...(orig.spec.volumes ?? []).map((v: Obj) => v.name), ...added]);
        assert.deepEqual(pod.spec.volumes.slice(0, (orig.spec.volumes ?? []).length), orig.spec.volumes ?? []);
        for (const m of sidecar.volumeMounts as Obj[]) assert.ok(pod.spec.volumes.some((v: Obj) => v.name === m.name), `mount ${m.name} has a volume`);
        assert.equal(pod.metadata.annotations['portcullis.dev/injected'], options.version);
        const { annotations: _a, ...restMeta } = pod.metadata;
        const { annotations: _b, ...restOrig } = orig.metadata ?? {};
        assert.deepEqual(restMeta, restOrig);
        assert.deepEqual({ ...pod.spec, initContainers: undefined, volumes: undefined }, { ...orig.spec, initContainers: undefined, volumes: undefined });
      }
      if (pods.length === 0) assert.deepEqual(doc, before[i]);
    }
  });

  test(`${name}: injecting twice changes nothing and says so`, () => {
    const once = inject(read(name));
    const twice = inject(once.output);
    assert.equal(twice.changed, false);
    assert.equal(twice.output, once.output);
    assert.ok(twice.reports.length > 0 && twice.reports.every((r) => r.outcome === 'skipped' && /already injected/.test(r.detail)));
  });
}

test('documents without pods are copied byte for byte, and comments in edited documents are kept', () => {
  const source = read('deployment.yaml');
  const out = inject(source).output;
  const service = source.slice(source.indexOf('---\napiVersion: v1\nkind: Service'));
  assert.ok(out.endsWith(service), 'the Service document is byte-identical');
  assert.ok(out.startsWith('# The Deployment from the Kubernetes "Deployments" concept page'));
  assert.match(out, /image: nginx:1\.14\.2 +# pinned by the team/);
  const sts = inject(read('statefulset.yaml')).output;
  assert.match(sts, /app: nginx # has to match \.spec\.template\.metadata\.labels/);
  assert.ok(sts.startsWith(read('statefulset.yaml').split('---')[0] as string), 'the headless Service before the StatefulSet is byte-identical');
});

test('annotations shape the sidecar: ports, mode, outbound, certificates from CSI, capture', () => {
  const [, sts] = docsOf(inject(read('statefulset.yaml')).output) as [Obj, Obj];
  const sidecar = sts.spec.template.spec.initContainers[0];
  assert.ok(sidecar.args.includes('name=inbound-8443,listen=0.0.0.0:8443,upstream=http://127.0.0.1:80'));
  const certs = sts.spec.template.spec.volumes.find((v: Obj) => v.name === 'portcullis-certs');
  assert.deepEqual(certs.csi, { driver: 'spiffe.csi.cert-manager.io', readOnly: true, volumeAttributes: { 'spiffe.csi.cert-manager.io/fs-group': '10001' } });

  const [dep] = docsOf(inject(read('deployment-native-sidecar.yaml')).output) as [Obj];
  const args = dep.spec.template.spec.initContainers[0].args as string[];
  assert.ok(args.includes('name=outbound-15001,listen=127.0.0.1:15001,target=https://orders.shop.svc.cluster.local:8443,expectIdentity=spiffe://cluster.local/ns/shop/sa/orders'));
  // The Secret defaults to <service account>-svid; this pod runs as `default`.
  assert.equal(dep.spec.template.spec.volumes.find((v: Obj) => v.name === 'portcullis-certs').secret.secretName, 'default-svid');
  // The app's logshipper sidecar comes after Portcullis, unchanged.
  assert.deepEqual(dep.spec.template.spec.initContainers.map((c: Obj) => c.name), ['portcullis', 'logshipper']);

  const [pod] = docsOf(inject(read('pod-security-context.yaml')).output) as [Obj];
  const [capture, side] = pod.spec.initContainers as [Obj, Obj];
  assert.equal(capture.name, 'portcullis-capture');
  assert.deepEqual(capture.securityContext.capabilities, { add: ['NET_ADMIN', 'NET_RAW'], drop: ['ALL'] });
  assert.match(capture.command[2], /-A PORTCULLIS_INBOUND -p tcp --dport 8080 -j REDIRECT --to-ports 8443/);
  assert.equal(side.securityContext.runAsUser, 10001, 'the sidecar overrides the pod-level runAsUser 1000');
  assert.deepEqual(pod.spec.securityContext, { runAsUser: 1000, runAsGroup: 3000, fsGroup: 2000, supplementalGroups: [4000] });

  const [job] = docsOf(inject(read('job-and-daemonset.yaml')).output) as [Obj];
  assert.equal(job.spec.template.spec.restartPolicy, 'Never');
  assert.ok(job.spec.template.spec.initContainers[0].args.includes('enforce'));
});

test('the mode comes from --mode unless the pod says otherwise', () => {
  const audit = injectorOptionsFrom({ mode: 'audit' }) as InjectorOptions;
  const r = injectYaml(read('cronjob.yaml'), audit);
  assert.ok(r.ok);
  const [cj] = docsOf(r.output) as [Obj];
  const args = cj.spec.jobTemplate.spec.template.spec.initContainers[0].args as string[];
  assert.equal(args[args.indexOf('--mode') + 1], 'audit');
  assert.equal(injectorOptionsFrom({ mode: 'permissive' }), "--mode must be enforce or audit, not 'permissive'");
});

test('invalid annotations and clashing names are refused with every reason, and nothing is written', () => {
  const r = injectYaml(read('refused.yaml'), options);
  assert.equal(r.ok, false);
  if (r.ok) return;
  const bad = r.reports.find((x) => x.name === 'Pod bad-annotations');
  assert.equal(bad?.outcome, 'refused');
  assert.match(bad!.detail, /annotation portcullis\.dev\/mode: must be "enforce" or "audit", not "permissive"/);
  assert.match(bad!.detail, /annotation portcullis\.dev\/inbound-ports: entry "8443=http:99999"/);
  assert.match(bad!.detail, /annotation portcullis\.dev\/outbound: entry "15001=http:\/\/orders:8443" must be LOCAL_PORT=https:\/\/HOST:PORT@spiffe:/);
  assert.match(bad!.detail, /annotation portcullis\.dev\/upstrem-port: unknown annotation/);
  const clash = r.reports.find((x) => x.name === 'Pod clashing-volume');
  assert.match(clash!.detail, /container app declares port 15021, which the sidecar's status listener needs/);
  assert.match(clash!.detail, /already has a volume named portcullis-certs/);
  assert.match(r.error, /^nothing written/);
});

test('opted-out and hostNetwork pods are skipped and the file passes through unchanged', () => {
  const source = read('skipped.yaml');
  const r = inject(source);
  assert.equal(r.changed, false);
  assert.equal(r.output, source);
  assert.deepEqual(r.reports.map((x) => [x.name, x.outcome]), [['Pod opted-out', 'skipped'], ['Pod node-agent', 'skipped']]);
  assert.match(r.reports[1]!.detail, /hostNetwork/);
});

test('the schema check used above rejects what the API server would reject', async () => {
  await assert.rejects(validateKubernetesObject({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'x' }, spec: { selector: {}, template: { spec: { containers: [{ name: 'a', ports: [{ containerPort: 'eighty' }] }] } } } }), /containerPort must be integer/);
  await assert.rejects(validateKubernetesObject({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'x' }, spec: { containers: [{ image: 'no-name' }] } }), /containers\/0 must have required property name/);
});

test('malformed YAML is refused with its line', () => {
  const r = injectYaml('kind: Pod\nspec: {containers: [\n', options);
  assert.equal(r.ok, false);
  if (!r.ok) assert.match(r.error, /^YAML error at line \d+, column \d+/);
});

test('every generated sidecar command line is a valid `portcullis run` configuration', async () => {
  const { loadConfig } = await import('../config/load.js');
  const { mkdtempSync, mkdirSync, writeFileSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(join(tmpdir(), 'pcl-inject-args-'));
  try {
    // The kubelet's side of the contract: the Downward API files and $(VAR) expansion.
    const podinfo = join(dir, 'podinfo');
    mkdirSync(podinfo);
    writeFileSync(join(podinfo, 'namespace'), 'shop');
    writeFileSync(join(podinfo, 'labels'), 'app="orders"');
    for (const name of injectedFixtures) {
      for (const doc of docsOf(inject(read(name)).output)) {
        for (const pod of podTemplates(doc)) {
          const sidecar = (pod.spec.initContainers as Obj[]).find((c) => c.name === 'portcullis') as Obj;
          const args = (sidecar.args as string[]).slice(1).map((a) => a === '/etc/portcullis/podinfo' ? podinfo : a.replace('$(PORTCULLIS_SERVICE_ACCOUNT)', 'orders'));
          const r = await loadConfig(args, { readFile: async (p: string) => readFileSync(p, 'utf8'), cwd: dir });
          assert.ok('config' in r, `${name}: ${JSON.stringify('diagnostics' in r ? r.diagnostics : '')}`);
          assert.equal(r.config.admin.host, '127.0.0.1');
          assert.deepEqual(r.config.statusListen, { host: '0.0.0.0', port: 15021 });
          assert.equal(r.config.compile.workload.namespace, 'shop');
        }
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
