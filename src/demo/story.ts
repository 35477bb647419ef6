// Owns the `npm start` story: demo PKI, service b behind Portcullis (enforce + an audit-only twin), service a
// and an intruder behind their own Portcullis (outbound), a scripted set of calls, and a readable table.

import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { generateKeyPair } from '../identity/x509-build.js';
import { SignJWT } from 'jose';
import { callOrders, startServiceB, type ServiceB } from './apps.js';
import { DEMO_JWT_AUDIENCE, DEMO_JWT_ISSUER, DEMO_NAMESPACE, demoSpiffeId, makeDemoPki, type DemoPki, type DemoWorkload } from './pki.js';

/** Where the example policies say the JWKS lives (compose and Kubernetes mount it there). */
export const EXAMPLE_JWKS_URI = 'file:///etc/portcullis/certs/jwks.json';

export interface DemoOptions {
  /** Working directory for PKI, configs and logs (wiped first). Default `<repo>/.demo`. */
  dir?: string;
  /** How to start Portcullis; default `node <dist>/src/main.js`. */
  portcullis?: string[];
  /** Overall deadline for startup + calls (ms). */
  timeoutMs?: number;
  write?: (text: string) => void;
}

export interface DemoRow {
  n: number;
  caller: string;
  call: string;
  shows: string;
  expected: string;
  got: string;
  ok: boolean;
  log: string;
}

export interface DemoResult {
  rows: DemoRow[];
  ok: boolean;
  auditLine: string | undefined;
  /** Stops every process the demo started; idempotent. */
  stop(): Promise<void>;
  endpoints: Record<string, string>;
  pki: DemoPki;
  dir: string;
}

interface Sidecar {
  name: string;
  admin: number;
  child: ChildProcess;
  events: Record<string, unknown>[];
  lines: string[];
  exited: { code: number | null; signal: string | null } | undefined;
  stderrFile: string;
}

export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 10 && !existsSync(join(dir, 'package.json')); i++) dir = dirname(dir);
  return dir;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function defaultPortcullis(): string[] {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.ts')) return [process.execPath, '--import', 'tsx', join(repoRoot(), 'src', 'main.ts')];
  return [process.execPath, join(dirname(dirname(here)), 'main.js')];
}

function yamlList(items: string[]): string {
  return items.map((i) => `  - ${i}`).join('\n');
}

interface SidecarSpec {
  name: string;
  workload: DemoWorkload;
  mode: 'enforce' | 'audit';
  admin: number;
  listeners: { name: string; port: number; upstream: string }[];
  outbound: { name: string; port: number; target: string; expect: string }[];
}

function renderConfig(spec: SidecarSpec, pki: DemoPki, policiesDir: string): string {
  const certs = pki.certs[spec.workload];
  const lines = [
    `# Portcullis config for ${spec.name} (written by the demo; see docs/deploy.md)`,
    `mode: ${spec.mode}`,
    'listeners:',
    ...spec.listeners.map((l) => `  - {name: ${l.name}, listen: "127.0.0.1:${l.port}", upstream: "${l.upstream}"}`),
  ];
  if (spec.outbound.length > 0) {
    lines.push('outbound:', ...spec.outbound.map((o) => `  - {name: ${o.name}, listen: "127.0.0.1:${o.port}", target: "${o.target}", expectIdentity: "${o.expect}"}`));
  }
  lines.push(
    `admin: "127.0.0.1:${spec.admin}"`,
    'policies:',
    yamlList([JSON.stringify(policiesDir)]),
    `cert: ${JSON.stringify(certs.cert)}`,
    `key: ${JSON.stringify(certs.key)}`,
    `trustBundle: ${JSON.stringify(pki.bundle)}`,
    `namespace: ${DEMO_NAMESPACE}`,
    'labels:',
    `  app: ${spec.workload}`,
    `serviceAccount: ${spec.workload}`,
    'decisionLog: stdout',
    'logLevel: warn',
  );
  return lines.join('\n') + '\n';
}

/** Copies examples/istio/policies, pointing the RequestAuthentication at the demo's JWKS file. */
function preparePolicies(dir: string, pki: DemoPki): string {
  const src = join(repoRoot(), 'examples', 'istio', 'policies');
  const out = join(dir, 'policies');
  mkdirSync(out, { recursive: true });
  for (const name of readdirSync(src)) {
    if (!/\.ya?ml$/.test(name)) continue;
    const text = readFileSync(join(src, name), 'utf8').split(EXAMPLE_JWKS_URI).join(`file://${pki.jwks}`);
    writeFileSync(join(out, name), text);
  }
  return out;
}

function startSidecar(name: string, command: string[], configFile: string, admin: number, logDir: string): Sidecar {
  const [exe, ...args] = command;
  const child = spawn(exe as string, [...args, 'run', '--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_ENV: 'production' } });
  const stderrFile = join(logDir, `${name}.stderr.log`);
  const stdoutLog = createWriteStream(join(logDir, `${name}.decisions.ndjson`));
  const stderrLog = createWriteStream(stderrFile);
  const sidecar: Sidecar = { name, admin, child, events: [], lines: [], exited: undefined, stderrFile };
  let pending = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    stdoutLog.write(chunk);
    pending += chunk.toString('utf8');
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      if (!line.trim()) continue;
      try {
        const parsed = JSON.parse(line) as Record<string, unknown>;
        if (parsed['v'] === 1 && 'verdict' in parsed) {
          sidecar.events.push(parsed);
          sidecar.lines.push(line);
        }
      } catch { /* not a decision event */ }
    }
  });
  child.stderr?.pipe(stderrLog);
  child.on('exit', (code, signal) => { sidecar.exited = { code, signal }; stdoutLog.end(); });
  return sidecar;
}

async function waitReady(sidecars: Sidecar[], deadline: number): Promise<void> {
  for (const s of sidecars) {
    for (;;) {
      if (s.exited) {
        const tail = existsSync(s.stderrFile) ? readFileSync(s.stderrFile, 'utf8').split('\n').slice(-15).join('\n') : '';
        throw new Error(`portcullis ${s.name} exited (code ${s.exited.code}) before it was ready:\n${tail}`);
      }
      if (Date.now() > deadline) throw new Error(`portcullis ${s.name} not ready on 127.0.0.1:${s.admin}/ready in time (see ${s.stderrFile})`);
      try {
        const r = await request(`http://127.0.0.1:${s.admin}/ready`, { headersTimeout: 1000, bodyTimeout: 1000 });
        await r.body.dump();
        if (r.statusCode === 200) break;
      } catch { /* not listening yet */ }
      await sleep(100);
    }
  }
}

async function stopSidecars(sidecars: Sidecar[]): Promise<void> {
  await Promise.all(sidecars.map(async (s) => {
    if (s.exited || s.child.pid === undefined) return;
    s.child.kill('SIGTERM');
    for (let i = 0; i < 50 && !s.exited; i++) await sleep(100);
    if (!s.exited) s.child.kill('SIGKILL');
  }));
}

/** Every process the demo started, for the last-resort exit handler. */
const liveChildren = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const c of liveChildren) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  });
}

function describeEvent(e: Record<string, unknown> | undefined): string {
  if (!e) return '(no decision event)';
  const policy = e['policy'] as { namespace?: string; name?: string } | null;
  const where = policy ? ` ${policy.namespace}/${policy.name}` : '';
  const wouldDeny = e['would_deny'] === true ? ' would_deny' : '';
  return `${String(e['verdict'])}${wouldDeny} ${String(e['reason'])}${where}`;
}

async function httpCall(url: string, init: { method?: string; body?: string; headers?: Record<string, string> } = {}): Promise<number> {
  const r = await request(url, { method: (init.method ?? 'GET') as 'GET', body: init.body, headers: init.headers, headersTimeout: 10_000, bodyTimeout: 10_000 });
  await r.body.dump();
  return r.statusCode;
}

export async function runDemo(options: DemoOptions = {}): Promise<DemoResult> {
  installExitHook();
  const write = options.write ?? ((t: string) => process.stdout.write(t));
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  const dir = options.dir ?? join(repoRoot(), '.demo');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'logs'), { recursive: true });
  const command = options.portcullis ?? defaultPortcullis();

  write(`Portcullis demo: working directory ${dir}\n`);
  const pki = await makeDemoPki(join(dir, 'pki'));
  write(`  demo PKI: CA + SVIDs for ${Object.values(pki.certs).map((c) => c.spiffeId).join(', ')}\n`);
  const policies = preparePolicies(dir, pki);

  const sidecars: Sidecar[] = [];
  let appB: ServiceB | undefined;
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await stopSidecars(sidecars);
    for (const s of sidecars) liveChildren.delete(s.child);
    await appB?.close().catch(() => undefined);
  };

  try {
    appB = await startServiceB();
    write(`  service b app: HTTP API 127.0.0.1:${appB.httpPort}, gRPC 127.0.0.1:${appB.grpcPort} (plaintext, loopback only)\n`);
    const p = {
      bHttp: await freePort(), bGrpc: await freePort(), bAdmin: await freePort(),
      auditHttp: await freePort(), auditAdmin: await freePort(),
      aIn: await freePort(), aOutHttp: await freePort(), aOutGrpc: await freePort(), aOutImpostor: await freePort(), aAdmin: await freePort(),
      iIn: await freePort(), iOutHttp: await freePort(), iOutAudit: await freePort(), iAdmin: await freePort(),
    };
    const idB = demoSpiffeId('service-b');
    const specs: SidecarSpec[] = [
      { name: 'service-b', workload: 'service-b', mode: 'enforce', admin: p.bAdmin, outbound: [], listeners: [
        { name: 'http', port: p.bHttp, upstream: `http://127.0.0.1:${appB.httpPort}` },
        { name: 'grpc', port: p.bGrpc, upstream: `h2c://127.0.0.1:${appB.grpcPort}` },
      ] },
      { name: 'service-b-audit', workload: 'service-b', mode: 'audit', admin: p.auditAdmin, outbound: [], listeners: [
        { name: 'http', port: p.auditHttp, upstream: `http://127.0.0.1:${appB.httpPort}` },
      ] },
      { name: 'service-a', workload: 'service-a', mode: 'enforce', admin: p.aAdmin,
        listeners: [{ name: 'http', port: p.aIn, upstream: 'http://127.0.0.1:9' }],
        outbound: [
          { name: 'to-b-http', port: p.aOutHttp, target: `https://127.0.0.1:${p.bHttp}`, expect: idB },
          { name: 'to-b-grpc', port: p.aOutGrpc, target: `https://127.0.0.1:${p.bGrpc}`, expect: idB },
          // Misconfigured on purpose: the address is the intruder's sidecar, the expected identity is b's.
          { name: 'to-impostor', port: p.aOutImpostor, target: `https://127.0.0.1:${p.iIn}`, expect: idB },
        ] },
      { name: 'intruder', workload: 'intruder', mode: 'enforce', admin: p.iAdmin,
        listeners: [{ name: 'http', port: p.iIn, upstream: 'http://127.0.0.1:9' }],
        outbound: [
          { name: 'to-b-http', port: p.iOutHttp, target: `https://127.0.0.1:${p.bHttp}`, expect: idB },
          { name: 'to-b-audit', port: p.iOutAudit, target: `https://127.0.0.1:${p.auditHttp}`, expect: idB },
        ] },
    ];
    for (const spec of specs) {
      const file = join(dir, `${spec.name}.yaml`);
      writeFileSync(file, renderConfig(spec, pki, policies));
      const s = startSidecar(spec.name, command, file, spec.admin, join(dir, 'logs'));
      sidecars.push(s);
      liveChildren.add(s.child);
    }
    await waitReady(sidecars, deadline);
    write(`  ${sidecars.length} Portcullis processes ready: ${sidecars.map((s) => `${s.name} (pid ${s.child.pid}, admin :${s.admin})`).join(', ')}\n\n`);

    const sidecarB = sidecars[0] as Sidecar;
    const sidecarAudit = sidecars[1] as Sidecar;
    const sidecarA = sidecars[2] as Sidecar;
    const foreignKey = generateKeyPair('ec');
    const forged = await new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: 'demo-1' }).setIssuer(DEMO_JWT_ISSUER).setAudience(DEMO_JWT_AUDIENCE)
      .setSubject('orders-client').setExpirationTime('1h').sign(foreignKey.privateKey);

    const a = `http://127.0.0.1:${p.aOutHttp}`;
    const intruder = `http://127.0.0.1:${p.iOutHttp}`;
    type Step = { caller: string; call: string; shows: string; expected: string; log: Sidecar; path: string; run: () => Promise<string> };
    const steps: Step[] = [
      { caller: 'service-a', call: 'GET /api/orders', shows: 'allowed', expected: '200', log: sidecarB, path: '/api/orders',
        run: async () => String(await httpCall(`${a}/api/orders`)) },
      { caller: 'service-a', call: 'GET /admin/config', shows: 'denied by path', expected: '403', log: sidecarB, path: '/admin/config',
        run: async () => String(await httpCall(`${a}/admin/config`)) },
      { caller: 'intruder', call: 'GET /api/orders', shows: 'denied by identity', expected: '403', log: sidecarB, path: '/api/orders',
        run: async () => String(await httpCall(`${intruder}/api/orders`)) },
      { caller: 'service-a', call: 'POST /api/orders (no JWT)', shows: 'denied without the required JWT', expected: '403', log: sidecarB, path: '/api/orders',
        run: async () => String(await httpCall(`${a}/api/orders`, { method: 'POST', body: '{"item":"gate"}', headers: { 'content-type': 'application/json' } })) },
      { caller: 'service-a', call: 'POST /api/orders (forged JWT)', shows: 'invalid JWT refused', expected: '401', log: sidecarB, path: '/api/orders',
        run: async () => String(await httpCall(`${a}/api/orders`, { method: 'POST', body: '{"item":"gate"}', headers: { 'content-type': 'application/json', authorization: `Bearer ${forged}` } })) },
      { caller: 'service-a', call: 'POST /api/orders (valid JWT)', shows: 'allowed with the JWT', expected: '201', log: sidecarB, path: '/api/orders',
        run: async () => String(await httpCall(`${a}/api/orders`, { method: 'POST', body: '{"item":"gate"}', headers: { 'content-type': 'application/json', authorization: `Bearer ${pki.token}` } })) },
      { caller: 'service-a', call: 'gRPC demo.Orders/GetOrder', shows: 'gRPC allowed', expected: 'grpc 0 OK', log: sidecarB, path: '/demo.Orders/GetOrder',
        run: async () => grpcLabel((await callOrders(`127.0.0.1:${p.aOutGrpc}`, 'GetOrder', { id: 7 })).code) },
      { caller: 'service-a', call: 'gRPC demo.Orders/DeleteOrder', shows: 'gRPC denied', expected: 'grpc 7 PERMISSION_DENIED', log: sidecarB, path: '/demo.Orders/DeleteOrder',
        run: async () => grpcLabel((await callOrders(`127.0.0.1:${p.aOutGrpc}`, 'DeleteOrder', { id: 7 })).code) },
      { caller: 'intruder', call: 'GET /api/orders (audit-only b)', shows: 'same denied call, audit mode', expected: '200', log: sidecarAudit, path: '/api/orders',
        run: async () => String(await httpCall(`http://127.0.0.1:${p.iOutAudit}/api/orders`)) },
      { caller: 'service-a', call: 'GET /api/orders -> impostor', shows: 'outbound: wrong server identity', expected: '503', log: sidecarA, path: '/api/orders',
        run: async () => String(await httpCall(`http://127.0.0.1:${p.aOutImpostor}/api/orders`)) },
    ];

    const rows: DemoRow[] = [];
    let auditLine: string | undefined;
    for (const [i, step] of steps.entries()) {
      if (Date.now() > deadline) throw new Error('demo deadline passed while sending calls');
      const before = step.log.events.length;
      let got: string;
      try {
        got = await step.run();
      } catch (err) {
        got = `error: ${err instanceof Error ? err.message : String(err)}`;
      }
      // The decision event is written right after the response; give the pipe a moment.
      let event: Record<string, unknown> | undefined;
      for (let t = 0; t < 20 && !event; t++) {
        event = step.log.events.slice(before).find((e) => (e['request'] as { path?: string } | undefined)?.path === step.path);
        if (!event) await sleep(25);
      }
      if (step.log === sidecarAudit && event) auditLine = step.log.lines[step.log.events.indexOf(event)];
      rows.push({ n: i + 1, caller: step.caller, call: step.call, shows: step.shows, expected: step.expected, got, ok: got === step.expected, log: describeEvent(event) });
    }

    const ok = rows.every((r) => r.ok) && auditLine !== undefined && auditLine.includes('"would_deny":true');
    const endpoints = {
      'service-a outbound (HTTP to b)': a,
      'service-a outbound (gRPC to b)': `127.0.0.1:${p.aOutGrpc}`,
      'intruder outbound (HTTP to b)': intruder,
      'intruder outbound (HTTP to audit-only b)': `http://127.0.0.1:${p.iOutAudit}`,
      'service-b inbound (mTLS)': `https://127.0.0.1:${p.bHttp}`,
      'service-b admin': `http://127.0.0.1:${p.bAdmin}`,
    };
    return { rows, ok, auditLine, stop, endpoints, pki, dir };
  } catch (err) {
    await stop();
    throw err;
  }
}

function grpcLabel(code: number): string {
  const names: Record<number, string> = { 0: 'OK', 7: 'PERMISSION_DENIED', 14: 'UNAVAILABLE', 16: 'UNAUTHENTICATED', 4: 'DEADLINE_EXCEEDED', 13: 'INTERNAL' };
  return `grpc ${code} ${names[code] ?? ''}`.trim();
}

export function renderTable(rows: DemoRow[]): string {
  const head = ['#', 'caller', 'call', 'shows', 'expected', 'got', '', 'decision log (verdict reason policy)'];
  const cells = rows.map((r) => [String(r.n), r.caller, r.call, r.shows, r.expected, r.got, r.ok ? 'PASS' : 'FAIL', r.log]);
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] ?? '').length)));
  const line = (c: string[]): string => c.map((v, i) => v.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)].join('\n') + '\n';
}
