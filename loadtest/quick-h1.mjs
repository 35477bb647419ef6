#!/usr/bin/env node
// Quick HTTP/1.1 keep-alive benchmark: autocannon GETs straight to a node:http upstream vs through the
// compiled Portcullis (mTLS client SVID + a 10-rule Istio policy + decision log to a file); prints req/s,
// p50/p99 latency and the sidecar's peak RSS. Usage: npx tsc -p . && node loadtest/quick-h1.mjs [--duration 10] [--connections 50]
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';

const { values } = parseArgs({ options: { duration: { type: 'string', default: '10' }, connections: { type: 'string', default: '50' }, dist: { type: 'string', default: 'dist' } } });
const root = resolve(new URL('..', import.meta.url).pathname);
const dist = resolve(root, values.dist);
const duration = Number(values.duration);
const connections = Number(values.connections);
const { createTestPki, TEST_IDS, writePkiFiles } = await import(join(dist, 'test/helpers/pki.js'));

const dir = mkdtempSync(join(tmpdir(), 'portcullis-bench-'));
const pki = createTestPki();
const server = pki.issue({ spiffeId: TEST_IDS.httpbin, dns: ['localhost'], ips: ['127.0.0.1'] });
const client = pki.issue({ spiffeId: TEST_IDS.frontend });
const files = writePkiFiles(join(dir, 'pki'), pki, { server });
mkdirSync(join(dir, 'policies'));
// Ten ALLOW rules; only the last admits the benchmark client, so every request walks all of them.
const rules = Array.from({ length: 9 }, (_, i) => `  - from: [{source: {principals: ["cluster.local/ns/foo/sa/svc-${i}"]}}]\n    to: [{operation: {methods: ["GET"], paths: ["/api/v${i}/*"]}}]`);
rules.push('  - from: [{source: {principals: ["cluster.local/ns/foo/sa/frontend"]}}]\n    to: [{operation: {methods: ["GET"], paths: ["/bench", "/bench/*"]}}]');
writeFileSync(join(dir, 'policies', 'policy.yaml'), `apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: bench, namespace: foo}\nspec:\n  action: ALLOW\n  rules:\n${rules.join('\n')}\n`);

function waitFor(child, pattern, what) {
  return new Promise((resolveWait, reject) => {
    let text = '';
    const onData = (c) => {
      text += c.toString();
      const m = pattern.exec(text);
      if (m) { child.stdout?.off('data', onData); child.stderr?.off('data', onData); resolveWait(m); }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${what} exited (${code}): ${text}`)));
  });
}

// The workload: a tiny keep-alive node:http server in its own process.
const upstream = spawn(process.execPath, ['-e', `
  const http = require('node:http');
  const body = Buffer.from('hello from the workload');
  const s = http.createServer((req, res) => { res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length }); res.end(body); });
  s.keepAliveTimeout = 65000;
  s.listen(0, '127.0.0.1', () => console.log('PORT=' + s.address().port));
`], { stdio: ['ignore', 'pipe', 'inherit'] });
const upstreamPort = Number((await waitFor(upstream, /PORT=(\d+)/, 'upstream'))[1]);

const proxy = spawn(process.execPath, [...(process.env.BENCH_PROXY_NODE_ARGS ?? '').split(' ').filter(Boolean), join(dist, 'src/main.js'), 'run',
  '--listener', `name=inbound,listen=127.0.0.1:0,upstream=http://127.0.0.1:${upstreamPort},mode=strict,workloadPort=8080`,
  '--policies', join(dir, 'policies'), '--cert', files.files.server.cert, '--key', files.files.server.key, '--trust-bundle', files.bundle,
  '--namespace', 'foo', '--service-account', 'httpbin', '--admin', '127.0.0.1:0', '--decision-log', join(dir, 'decisions.ndjson'),
], { stdio: ['ignore', 'ignore', 'pipe'] });
const proxyPort = Number((await waitFor(proxy, /"address":"127\.0\.0\.1:(\d+)"/, 'portcullis'))[1]);

function rssMiB(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch { return NaN; }
}

function cpuSeconds(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch { return NaN; }
}

async function run(name, opts) {
  // Warm-up (JIT, TLS sessions, pools), then the measured run.
  await autocannon({ ...opts, connections, duration: 2 });
  let peakRss = 0;
  const sampler = setInterval(() => { peakRss = Math.max(peakRss, rssMiB(proxy.pid)); }, 250);
  const cpu0 = cpuSeconds(proxy.pid);
  const t0 = Date.now();
  const result = await autocannon({ ...opts, connections, duration });
  const proxyCpu = (cpuSeconds(proxy.pid) - cpu0) / ((Date.now() - t0) / 1000);
  clearInterval(sampler);
  return { name, rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, errors: result.errors + result.non2xx, total: result.requests.total, peakRss, proxyCpu };
}

try {
  const idleRss = rssMiB(proxy.pid);
  const direct = await run('direct (node:http upstream)', { url: `http://127.0.0.1:${upstreamPort}/bench` });
  const through = await run('through Portcullis (mTLS, 10 rules, decision log)', {
    url: `https://127.0.0.1:${proxyPort}/bench`,
    tlsOptions: { cert: client.chainPem, key: client.keyPem, ca: pki.caCertPem },
  });
  const logged = readFileSync(join(dir, 'decisions.ndjson'), 'utf8').split('\n').filter(Boolean).length;
  console.log(`\nHTTP/1.1 keep-alive GET, ${connections} connections, ${duration}s, node ${process.version}`);
  console.log('| target | req/s | p50 ms | p99 ms | errors/non-2xx | sidecar peak RSS MiB | sidecar CPU (cores) |');
  console.log('|---|---|---|---|---|---|---|');
  for (const r of [direct, through]) {
    console.log(`| ${r.name} | ${Math.round(r.rps)} | ${r.p50} | ${r.p99} | ${r.errors} | ${r === through ? r.peakRss.toFixed(0) : '-'} | ${r === through ? r.proxyCpu.toFixed(2) : '-'} |`);
  }
  console.log(`\nsidecar RSS idle: ${idleRss.toFixed(0)} MiB; decision events logged: ${logged}`);
} finally {
  proxy.kill('SIGTERM');
  upstream.kill('SIGTERM');
  setTimeout(() => { rmSync(dir, { recursive: true, force: true }); process.exit(0); }, 1500);
}
