// Benchmark of the policy hot path on the network-policy dialects: Calico and Cilium sets of 1,000 rules as
// users write them (label peers answered by the peer registry, L7 HTTP rules, denies, L4-only ports), alone
// and both on one workload. Run: npm run bench:policy. Target as for Istio: >= 500,000 decisions/s at 1,000 rules.
import { compilePolicies } from '../policy/compile.js';
import { buildRequestContext } from '../policy/context.js';
import type { RequestContext, RequestInput } from '../policy/context-types.js';
import { evaluate } from '../policy/evaluate.js';
import type { CompileOptions } from '../policy/ir.js';
import type { PolicySnapshot } from '../policy/snapshot.js';
import { buildRegistry, type PeerFacts } from '../policy/peers.js';
import { cpuMs, measure, MEASURE_MS, rng, ROUNDS } from './measure.js';

const RULES = Number(process.env.BENCH_CNI_RULES ?? 1000);
const RULES_PER_POLICY = 10;
const CLIENTS = 50;
const WIDE_MIX = Number(process.env.BENCH_DISTINCT ?? 4096);
const HOT_MIX = 64;

// The callers: one identity per client, two pods each (same labels), all in the workload's namespace.
const clientId = (c: number, kind = 'client') => `spiffe://cluster.local/ns/shop/sa/${kind}${c}`;
const pods: PeerFacts[] = [];
for (let c = 0; c < CLIENTS; c++) {
  for (const kind of ['client', 'blocked']) {
    for (let p = 0; p < 2; p++) {
      pods.push({
        spiffeId: clientId(c, kind), namespace: 'shop', serviceAccount: `${kind}${c}`, labels: { app: `${kind}${c}` },
        namespaceLabels: { 'kubernetes.io/metadata.name': 'shop' }, serviceAccountLabels: {}, ips: [`10.20.${c}.${p + (kind === 'client' ? 1 : 100)}`],
      });
    }
  }
}

const options: CompileOptions = {
  workload: { namespace: 'shop', labels: { app: 'shop' }, annotations: {}, serviceAccount: 'shop', trustDomain: 'cluster.local', trustDomainAliases: [] },
  rootNamespace: 'istio-system', pathNormalization: 'BASE', customProviders: [],
  linkerd: { defaultPolicy: 'all-unauthenticated', clusterNetworks: [], probeNetworks: [], probePaths: {}, portNames: {}, controlPlaneNamespace: 'linkerd' },
  peers: buildRegistry(pods),
};

type Kind = 'allow-exact' | 'allow-prefix' | 'allow-port' | 'deny';
interface Shape { kind: Kind; service: number; item: number; client: number }

function shapes(count: number): Shape[] {
  const rand = rng(count + 7);
  const out: Shape[] = [];
  for (let i = 0; i < count; i++) {
    const r = rand();
    const kind: Kind = r < 0.5 ? 'allow-exact' : r < 0.75 ? 'allow-prefix' : r < 0.85 ? 'allow-port' : 'deny';
    out.push({ kind, service: Math.floor(i / 4), item: i, client: Math.floor(rand() * CLIENTS) });
  }
  return out;
}

function calicoRule(s: Shape): string {
  const from = `    source:\n      selector: app == 'client${s.client}'\n`;
  switch (s.kind) {
    case 'allow-exact':
      return `  - action: Allow\n    protocol: TCP\n${from}    destination:\n      ports: [8080]\n    http:\n      methods: [GET]\n      paths:\n      - exact: /svc${s.service}/items/${s.item}\n`;
    case 'allow-prefix':
      return `  - action: Allow\n    protocol: TCP\n${from}    destination:\n      ports: [8080]\n    http:\n      methods: [GET, POST]\n      paths:\n      - prefix: /svc${s.service}/api/v${s.item}/\n`;
    case 'allow-port':
      return `  - action: Allow\n    protocol: TCP\n    source:\n      serviceAccounts:\n        names: [client${s.client}]\n    destination:\n      ports: [9090]\n`;
    case 'deny':
      return `  - action: Deny\n    protocol: TCP\n    source:\n      selector: app == 'blocked${s.client}'\n`;
  }
}

function ciliumRule(s: Shape): string {
  const from = (app: string) => `  - fromEndpoints:\n    - matchLabels:\n        app: ${app}\n`;
  switch (s.kind) {
    case 'allow-exact':
      return `${from(`client${s.client}`)}    toPorts:\n    - ports:\n      - port: "8080"\n        protocol: TCP\n      rules:\n        http:\n        - method: GET\n          path: /svc${s.service}/items/${s.item}\n`;
    case 'allow-prefix':
      return `${from(`client${s.client}`)}    toPorts:\n    - ports:\n      - port: "8080"\n        protocol: TCP\n      rules:\n        http:\n        - method: GET|POST\n          path: /svc${s.service}/api/v${s.item}/.*\n`;
    case 'allow-port':
      return `  - fromEndpoints:\n    - matchLabels:\n        io.cilium.k8s.policy.serviceaccount: client${s.client}\n    toPorts:\n    - ports:\n      - port: "9090"\n        protocol: TCP\n`;
    case 'deny':
      return `${from(`blocked${s.client}`)}    toPorts:\n    - ports:\n      - port: "8080"\n        protocol: TCP\n`;
  }
}

/** Calico: one NetworkPolicy per ten rules in the default tier, in order. */
function calicoYaml(list: Shape[]): string {
  const docs: string[] = [];
  for (let p = 0; p * RULES_PER_POLICY < list.length; p++) {
    const mine = list.slice(p * RULES_PER_POLICY, (p + 1) * RULES_PER_POLICY);
    docs.push(`apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata:
  name: shop-${p}
  namespace: shop
spec:
  order: ${p + 1}
  selector: app == 'shop'
  types: [Ingress]
  ingress:
${mine.map(calicoRule).join('')}`);
  }
  return docs.join('---\n');
}

/** Cilium: one CiliumNetworkPolicy per ten rules; denies go to ingressDeny (L3/L4). */
function ciliumYaml(list: Shape[]): string {
  const docs: string[] = [];
  for (let p = 0; p * RULES_PER_POLICY < list.length; p++) {
    const mine = list.slice(p * RULES_PER_POLICY, (p + 1) * RULES_PER_POLICY);
    const allows = mine.filter((s) => s.kind !== 'deny');
    const denies = mine.filter((s) => s.kind === 'deny');
    docs.push(`apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: shop-${p}
  namespace: shop
spec:
  endpointSelector:
    matchLabels:
      app: shop
${allows.length > 0 ? `  ingress:\n${allows.map(ciliumRule).join('')}` : ''}${denies.length > 0 ? `  ingressDeny:\n${denies.map(ciliumRule).join('')}` : ''}`);
  }
  return docs.join('---\n');
}

function peer(id: string): RequestInput['peer'] {
  const m = /^spiffe:\/\/([^/]+)\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(id);
  return Object.freeze({ spiffeId: id, principal: id.slice('spiffe://'.length), trustDomain: m?.[1] ?? '', namespace: m?.[2], serviceAccount: m?.[3] });
}

function request(s: Shape, want: 'allow' | 'deny' | 'unmatched', rand: () => number): RequestInput {
  const base: RequestInput = {
    protocol: 'http', method: 'GET', path: '/', host: 'shop.shop.svc.cluster.local:8080', headers: { 'user-agent': 'bench', accept: '*/*' },
    peer: peer(clientId(s.client)), sourceIp: `10.20.${s.client}.1`, port: 8080, jwt: null,
  };
  if (want === 'unmatched') return { ...base, path: `/svc${s.service}/nothing/${Math.floor(rand() * 1e6)}` };
  if (want === 'deny') return { ...base, path: `/svc${s.service}/items/${s.item}`, peer: peer(clientId(s.client, 'blocked')), sourceIp: `10.20.${s.client}.100` };
  switch (s.kind) {
    case 'allow-exact': return { ...base, path: `/svc${s.service}/items/${s.item}` };
    case 'allow-prefix': return { ...base, method: 'POST', path: `/svc${s.service}/api/v${s.item}/orders` };
    default: return { ...base, path: `/anything/${s.item}`, port: 9090 };
  }
}

function requests(list: Shape[], count: number): RequestInput[] {
  const rand = rng(42);
  const allows = list.filter((s) => s.kind !== 'deny');
  const denies = list.filter((s) => s.kind === 'deny');
  const out: RequestInput[] = [];
  for (let i = 0; i < count; i++) {
    const r = rand();
    // 60% allowed, 20% from a denied identity, 20% matching nothing.
    if (r < 0.6) out.push(request(allows[Math.floor(rand() * allows.length)] as Shape, 'allow', rand));
    else if (r < 0.8) out.push(request(denies[Math.floor(rand() * denies.length)] as Shape, 'deny', rand));
    else out.push(request(list[Math.floor(rand() * list.length)] as Shape, 'unmatched', rand));
  }
  return out;
}

function contexts(inputs: RequestInput[]): RequestContext[] {
  return inputs.map((input) => {
    const r = buildRequestContext(input, { pathNormalization: 'BASE', rejectEncodedSlashes: false });
    if (!r.ok) throw new Error(`bench request refused: ${r.reason}`);
    return r.context;
  });
}

let sink = 0;

interface Row { set: string; rules: number; compileMs: number; evalNs: number; perSec: number; hotNs: number; mix: string }

/** A row, or why the set was not measured (a dialect this build does not enforce). */
function bench(set: string, yaml: string, list: Shape[]): Row | string {
  const t0 = cpuMs();
  const result = compilePolicies([{ file: `${set}.yaml`, text: yaml }], options);
  const compileMs = cpuMs() - t0;
  const snapshot: PolicySnapshot | undefined = result.snapshot;
  if (!snapshot) {
    const errs = result.diagnostics.filter((d) => d.severity === 'error').slice(0, 5).map((d) => `${d.code} ${d.fieldPath}: ${d.message}`);
    throw new Error(`the ${set} set does not compile:\n${errs.join('\n')}`);
  }
  for (const dialect of set.split('+')) {
    if (!snapshot.program.tiers.some((t) => t.dialect === dialect)) return `${set}: not measured, the ${dialect} policies lowered to no ${dialect} tier`;
  }
  const rules = snapshot.program.tiers.reduce((n, t) => n + t.anyPort.rules.length + Object.values(t.ports).reduce((m, s) => m + s.rules.length, 0), 0);
  const wide = contexts(requests(list, WIDE_MIX));
  const hot = contexts(requests(list, HOT_MIX));
  const tally = new Map<string, number>();
  for (const c of wide) {
    const d = evaluate(snapshot, c);
    const key = `${d.verdict} ${d.dialect ?? '-'}`;
    tally.set(key, (tally.get(key) ?? 0) + 1);
  }
  const run = (list: RequestContext[]) => () => {
    for (let i = 0; i < list.length; i++) if (evaluate(snapshot, list[i] as RequestContext).verdict === 'allow') sink++;
    return list.length;
  };
  const w = measure(run(wide));
  const h = measure(run(hot));
  const mix = [...tally.entries()].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${Math.round((v * 100) / wide.length)}%`).join(', ');
  return { set, rules, compileMs, evalNs: w.nsPerOp, perSec: w.opsPerSec, hotNs: h.nsPerOp, mix };
}

function main(): void {
  const all = shapes(RULES);
  const half = shapes(RULES / 2);
  const results = [
    bench('calico', calicoYaml(all), all),
    bench('cilium', ciliumYaml(all), all),
    // Both dialects on one workload (defense in depth): the same rules written once in each, so a request
    // must be admitted by both; RULES rules in all.
    bench('calico+cilium', `${calicoYaml(half)}---\n${ciliumYaml(half)}`, half),
  ];
  const rows = results.filter((r): r is Row => typeof r !== 'string');
  if (sink < 0) console.log(sink);
  for (const r of results) if (typeof r === 'string') console.log(r);
  if (rows.length === 0) return;
  console.log('');
  console.log(`CNI mix: Calico and Cilium policies with label peers from a registry of ${pods.length} pods; evaluate() over ${WIDE_MIX} distinct requests (wide) and ${HOT_MIX} (hot)`);
  console.log('set             IR rules   compile ms   ns/decision   decisions/s   hot ns/decision   outcome mix (wide)');
  for (const r of rows) {
    console.log(`${r.set.padEnd(14)}   ${String(r.rules).padStart(8)}   ${r.compileMs.toFixed(1).padStart(10)}   ${r.evalNs.toFixed(0).padStart(11)}   ${Math.round(r.perSec).toLocaleString('en-US').padStart(11)}   ${r.hotNs.toFixed(0).padStart(15)}   ${r.mix}`);
  }
  const worst = rows.reduce((a, b) => (a.perSec < b.perSec ? a : b));
  console.log(`decisions/s at ${RULES} Calico/Cilium rules: ${Math.round(worst.perSec).toLocaleString('en-US')} wide in the slowest set (${worst.set}) (target >= 500,000)`);
  console.log(`node ${process.version}, one core; process CPU time; best of ${ROUNDS} rounds over ${MEASURE_MS} ms`);
}

main();
