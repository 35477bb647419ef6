// Benchmark of the policy engine's hot path: realistic Istio AuthorizationPolicy sets written as YAML
// (10 to 10,000 rules), compiled with compilePolicies, then ns/decision over allowed/denied/unmatched mixes.
// Run: npm run bench:policy. Targets: >=500k decisions/s at 1,000 rules, <=4x slowdown 10 -> 10,000, compile <1 s.
import { compatibilities, DEFAULT_COMPATIBILITY, withCompatibility, type Compatibility } from '../policy/compatibility.js';
import { compilePolicies } from '../policy/compile.js';
import { buildRequestContext } from '../policy/context.js';
import type { RequestContext, RequestInput } from '../policy/context-types.js';
import { evaluate } from '../policy/evaluate.js';
import type { CompileOptions } from '../policy/ir.js';
import type { PolicySnapshot } from '../policy/snapshot.js';
import { loadavg } from 'node:os';
import { cpuMs, measureInterleaved, MEASURE_MS, rng, ROUNDS } from './measure.js';

const SIZES = (process.env.BENCH_SIZES ?? '10,100,1000,10000').split(',').map(Number);
const RULES_PER_POLICY = 10;

// Measured as Portcullis ships: the default compatibility setting (secure) widens DENY paths and hosts.
// BENCH_COMPATIBILITY=istio-exact measures the upstream-exact setting instead.
const compatibility = (process.env.BENCH_COMPATIBILITY ?? DEFAULT_COMPATIBILITY) as Compatibility;
if (!compatibilities.includes(compatibility)) throw new Error(`BENCH_COMPATIBILITY must be one of ${compatibilities.join(', ')}`);
const options: CompileOptions = withCompatibility({
  workload: { namespace: 'shop', labels: { app: 'shop', version: 'v1' }, annotations: {}, serviceAccount: 'shop', trustDomain: 'cluster.local', trustDomainAliases: [] },
  rootNamespace: 'istio-system',
  pathNormalization: 'BASE',
  customProviders: [],
  linkerd: { defaultPolicy: 'all-unauthenticated', clusterNetworks: [], probeNetworks: [], probePaths: {}, portNames: {}, controlPlaneNamespace: 'linkerd' },
}, compatibility);


interface RuleShape {
  kind: 'allow-exact' | 'allow-prefix' | 'allow-ns' | 'allow-header' | 'deny-prefix' | 'deny-exact' | 'allow-principal-only';
  service: number;
  item: number;
  client: number;
}

// The kinds follow a low-discrepancy sequence (not the random stream), so every set, 10 rules included, has the
// same mix of kinds: with random kinds the 10-rule set had no DENY rule, and its requests a different mix.
function shapeFor(i: number, rand: () => number): RuleShape {
  const r = ((i + 0.5) * 0.6180339887498949) % 1;
  const service = Math.floor(i / 4);
  const item = i;
  const client = Math.floor(rand() * 50);
  if (r < 0.40) return { kind: 'allow-exact', service, item, client };
  if (r < 0.60) return { kind: 'allow-prefix', service, item, client };
  if (r < 0.70) return { kind: 'allow-ns', service, item, client };
  if (r < 0.78) return { kind: 'allow-header', service, item, client };
  if (r < 0.90) return { kind: 'deny-prefix', service, item, client };
  if (r < 0.99) return { kind: 'deny-exact', service, item, client };
  return { kind: 'allow-principal-only', service, item, client };
}

function ruleYaml(s: RuleShape): string {
  const principal = `cluster.local/ns/clients/sa/client${s.client}`;
  switch (s.kind) {
    case 'allow-exact':
      return `  - from:\n    - source:\n        principals: ["${principal}"]\n    to:\n    - operation:\n        methods: ["GET", "HEAD"]\n        paths: ["/svc${s.service}/items/${s.item}"]\n`;
    case 'allow-prefix':
      return `  - from:\n    - source:\n        principals: ["${principal}", "cluster.local/ns/clients/sa/batch"]\n    to:\n    - operation:\n        methods: ["GET", "POST"]\n        paths: ["/svc${s.service}/api/v${s.item}/*"]\n`;
    case 'allow-ns':
      return `  - from:\n    - source:\n        namespaces: ["team${s.client}"]\n    to:\n    - operation:\n        paths: ["/svc${s.service}/reports/${s.item}", "/svc${s.service}/reports/${s.item}/*"]\n`;
    case 'allow-header':
      return `  - to:\n    - operation:\n        methods: ["GET"]\n        paths: ["/svc${s.service}/public/${s.item}*"]\n    when:\n    - key: request.headers[x-tenant]\n      values: ["tenant-${s.client}"]\n`;
    case 'deny-prefix':
      return `  - to:\n    - operation:\n        paths: ["/svc${s.service}/admin/${s.item}*"]\n    when:\n    - key: source.namespace\n      notValues: ["ops"]\n`;
    case 'deny-exact':
      return `  - from:\n    - source:\n        notPrincipals: ["cluster.local/ns/ops/sa/root"]\n    to:\n    - operation:\n        methods: ["DELETE"]\n        paths: ["/svc${s.service}/items/${s.item}"]\n`;
    case 'allow-principal-only':
      return `  - from:\n    - source:\n        principals: ["cluster.local/ns/ops/sa/auditor${s.client}"]\n`;
  }
}

function policySetYaml(ruleCount: number): { yaml: string; shapes: RuleShape[] } {
  const rand = rng(ruleCount);
  const shapes: RuleShape[] = [];
  const docs: string[] = [];
  for (let p = 0; p * RULES_PER_POLICY < ruleCount; p++) {
    const mine: RuleShape[] = [];
    for (let i = p * RULES_PER_POLICY; i < Math.min(ruleCount, (p + 1) * RULES_PER_POLICY); i++) mine.push(shapeFor(i, rand));
    // One action per policy: group by allow/deny, as people write them.
    for (const action of ['ALLOW', 'DENY'] as const) {
      const rules = mine.filter((s) => s.kind.startsWith(action.toLowerCase()));
      if (rules.length === 0) continue;
      shapes.push(...rules);
      docs.push(`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: ${action.toLowerCase()}-${p}
  namespace: shop
spec:
  selector:
    matchLabels:
      app: shop
  action: ${action}
  rules:
${rules.map(ruleYaml).join('')}`);
    }
  }
  return { yaml: docs.join('---\n'), shapes };
}

function requestFor(shape: RuleShape, want: 'allow' | 'deny' | 'unmatched', rand: () => number): RequestInput {
  const base: RequestInput = {
    protocol: 'http', method: 'GET', path: '/', host: 'shop.shop.svc.cluster.local:8080', headers: { 'user-agent': 'bench', accept: '*/*' },
    peer: peer(`cluster.local/ns/clients/sa/client${shape.client}`), sourceIp: '10.12.0.7', port: 8080, jwt: null,
  };
  if (want === 'unmatched') return { ...base, path: `/svc${shape.service}/nothing/${Math.floor(rand() * 1e6)}?page=2` };
  if (want === 'deny') {
    if (shape.kind === 'deny-exact') return { ...base, method: 'DELETE', path: `/svc${shape.service}/items/${shape.item}` };
    return { ...base, path: `/svc${shape.service}/admin/${shape.item}/users`, peer: peer('cluster.local/ns/clients/sa/x') };
  }
  switch (shape.kind) {
    case 'allow-exact': return { ...base, path: `/svc${shape.service}/items/${shape.item}` };
    case 'allow-prefix': return { ...base, method: 'POST', path: `/svc${shape.service}/api/v${shape.item}/orders?id=7` };
    case 'allow-ns': return { ...base, path: `/svc${shape.service}/reports/${shape.item}/q3`, peer: peer(`cluster.local/ns/team${shape.client}/sa/reader`) };
    case 'allow-header': return { ...base, path: `/svc${shape.service}/public/${shape.item}/doc`, headers: { ...base.headers, 'x-tenant': `tenant-${shape.client}` } };
    default: return { ...base, path: '/', peer: peer(`cluster.local/ns/ops/sa/auditor${shape.client}`) };
  }
}

function peer(principal: string): RequestInput['peer'] {
  const m = /\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(principal);
  return Object.freeze({ spiffeId: `spiffe://${principal}`, principal, trustDomain: 'cluster.local', namespace: m?.[1], serviceAccount: m?.[2] });
}

function buildRequests(shapes: RuleShape[], count: number): RequestInput[] {
  const rand = rng(42);
  const allows = shapes.filter((s) => s.kind.startsWith('allow'));
  const denies = shapes.filter((s) => s.kind.startsWith('deny'));
  const out: RequestInput[] = [];
  for (let i = 0; i < count; i++) {
    const r = rand();
    // 60% allowed, 20% denied by a DENY rule, 20% matching nothing.
    if (r < 0.6 && allows.length > 0) out.push(requestFor(allows[Math.floor(rand() * allows.length)] as RuleShape, 'allow', rand));
    else if (r < 0.8 && denies.length > 0) out.push(requestFor(denies[Math.floor(rand() * denies.length)] as RuleShape, 'deny', rand));
    else out.push(requestFor(shapes[Math.floor(rand() * shapes.length)] as RuleShape, 'unmatched', rand));
  }
  return out;
}



interface Row {
  rules: number;
  compileMs: number;
  prepareMs: number;
  /** Evaluation over a wide mix of distinct requests spread across the whole rule set (cache-cold). */
  evalNs: number;
  evalPerSec: number;
  /** Evaluation over a small hot set of distinct requests (cache-warm, as with real traffic locality). */
  hotNs: number;
  pipelineNs: number;
  verdicts: string;
}

const WIDE_MIX = Number(process.env.BENCH_DISTINCT ?? 4096);
const HOT_MIX = 64;

function contextsFor(inputs: RequestInput[]): RequestContext[] {
  return inputs.map((input) => {
    const r = buildRequestContext(input, { pathNormalization: 'BASE', rejectEncodedSlashes: false });
    if (!r.ok) throw new Error(`bench request refused: ${r.reason} ${r.detail}`);
    return r.context;
  });
}

let sink = 0;

const evaluateAll = (snapshot: PolicySnapshot, contexts: RequestContext[]) => (): number => {
  for (let i = 0; i < contexts.length; i++) if (evaluate(snapshot, contexts[i] as RequestContext).verdict === 'allow') sink++;
  return contexts.length;
};

const contextAndEvaluate = (snapshot: PolicySnapshot, inputs: RequestInput[]) => (): number => {
  for (let i = 0; i < inputs.length; i++) {
    const r = buildRequestContext(inputs[i] as RequestInput, { pathNormalization: 'BASE', rejectEncodedSlashes: false });
    if (r.ok && evaluate(snapshot, r.context).verdict === 'allow') sink++;
  }
  return inputs.length;
};

const load = (): string => loadavg().map((l) => l.toFixed(1)).join(' ');

function run(): void {
  const loadBefore = load();
  const sets = SIZES.map((size) => {
    const { yaml, shapes } = policySetYaml(size);
    const t0 = cpuMs();
    const result = compilePolicies([{ file: `bench-${size}.yaml`, text: yaml }], options, { clock: cpuMs });
    const compileMs = cpuMs() - t0;
    const snapshot = result.snapshot;
    const httpTier = snapshot?.compiled.tiers.find((t) => t.tier.dialect === 'istio' && t.tier.name === 'http');
    if (!snapshot || !httpTier) {
      const errs = result.diagnostics.filter((d) => d.severity === 'error').slice(0, 5).map((d) => `${d.code} ${d.fieldPath}: ${d.message}`);
      throw new Error(`compilePolicies produced no Istio program for ${size} rules:\n${errs.join('\n')}`);
    }
    const ruleCount = httpTier.tier.anyPort.rules.filter((r) => r.action === 'allow' || r.action === 'deny').length;
    if (process.env.BENCH_DEBUG) console.log('index', httpTier.anyPort.list.set.stats);
    const inputs = buildRequests(shapes, WIDE_MIX);
    const contexts = contextsFor(inputs);
    const hot = contextsFor(buildRequests(shapes, HOT_MIX));
    const tally = new Map<string, number>();
    for (const c of contexts) {
      const d = evaluate(snapshot, c);
      tally.set(d.reason, (tally.get(d.reason) ?? 0) + 1);
    }
    const stages = result.timings.map((t) => `${t.stage} ${t.ms.toFixed(1)}`).join(', ');
    console.log(`compiled ${ruleCount} rules in ${compileMs.toFixed(1)} ms (${stages})`);
    return {
      ruleCount, compileMs, prepareMs: result.timings.find((t) => t.stage === 'prepare')?.ms ?? NaN, snapshot, inputs, contexts, hot,
      verdicts: [...tally.entries()].map(([k, v]) => `${k} ${Math.round((v * 100) / contexts.length)}%`).join(', '),
    };
  });
  // Every size is measured in the same rounds, in turn, so the ratios between sizes come from one stretch of time.
  const wide = measureInterleaved(sets.map((s) => evaluateAll(s.snapshot, s.contexts)));
  const warm = measureInterleaved(sets.map((s) => evaluateAll(s.snapshot, s.hot)));
  const pipeline = measureInterleaved(sets.map((s) => contextAndEvaluate(s.snapshot, s.inputs)));
  const rows: Row[] = sets.map((s, i) => ({
    rules: s.ruleCount, compileMs: s.compileMs, prepareMs: s.prepareMs,
    evalNs: (wide[i] as { nsPerOp: number }).nsPerOp, evalPerSec: (wide[i] as { opsPerSec: number }).opsPerSec,
    hotNs: (warm[i] as { nsPerOp: number }).nsPerOp, pipelineNs: (pipeline[i] as { nsPerOp: number }).nsPerOp, verdicts: s.verdicts,
  }));
  if (sink < 0) console.log(sink);
  console.log('');
  console.log(`ns/decision: evaluate() alone over ${WIDE_MIX} distinct requests (wide) and over ${HOT_MIX} (hot); context: buildRequestContext + evaluate (wide)`);
  console.log('rules   compile ms   prepare ms   ns/decision   decisions/s   hot ns/decision   ns context+decision   outcome mix (wide)');
  for (const r of rows) {
    console.log(`${String(r.rules).padStart(5)}   ${r.compileMs.toFixed(1).padStart(10)}   ${r.prepareMs.toFixed(1).padStart(10)}   ${r.evalNs.toFixed(0).padStart(11)}   ${Math.round(r.evalPerSec).toLocaleString('en-US').padStart(11)}   ${r.hotNs.toFixed(0).padStart(15)}   ${r.pipelineNs.toFixed(0).padStart(19)}   ${r.verdicts}`);
  }
  const first = rows[0] as Row;
  const last = rows[rows.length - 1] as Row;
  const at1k = rows.find((r) => r.rules >= 900 && r.rules <= 1100) ?? last;
  console.log('');
  console.log(`slowdown ${first.rules} -> ${last.rules} rules: ${(last.evalNs / first.evalNs).toFixed(2)}x wide, ${(last.hotNs / first.hotNs).toFixed(2)}x hot (target <= 4x)`);
  console.log(`decisions/s at ${at1k.rules} rules: ${Math.round(at1k.evalPerSec).toLocaleString('en-US')} wide, ${Math.round(1e9 / at1k.hotNs).toLocaleString('en-US')} hot (target >= 500,000)`);
  console.log(`compile time at ${last.rules} rules: ${last.compileMs.toFixed(0)} ms, of which prepare (matchers + index) ${last.prepareMs.toFixed(0)} ms (target < 1000 ms)`);
  console.log(`compatibility ${compatibility}; node ${process.version}, one core; all times are process CPU time (steadier than wall time on a busy machine); ns/decision is the best of ${ROUNDS} rounds of ${MEASURE_MS / ROUNDS} ms, the sizes' rounds interleaved`);
  console.log(`load average (1, 5, 15 min): ${loadBefore} before, ${load()} after`);
}

run();
