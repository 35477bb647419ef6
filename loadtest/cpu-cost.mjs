#!/usr/bin/env node
// Owns the count-based CPU comparison: each setup (default the bare reference proxy, pc-10 and, with
// --baseline-dist, pc-10-baseline) gets the same fixed number of requests per round over HTTP/1.1, HTTP/2 or
// gRPC unary, rounds interleaved in rotating order, and each proxy's CPU time over its round (/proc schedstat,
// every thread) is divided by its requests. A loaded, shared machine stretches a timed run's wall clock and
// rates, but barely changes what one request costs: the paired per-round ratios are the figures to quote.
// Usage: node loadtest/cpu-cost.mjs [--protocol h1|h2|grpc] [--setups bare,pc-10] [--baseline-dist DIR]
//        [--rounds 10] [--requests 2000] [--concurrency 8] [--body-bytes N (h1: POST /api/upload with an N-byte body)]
//        [--dist dist] [--json FILE] [--trace-gc] [--together] [--keep] [--node-flags '--flag ...' (every setup's node)]
// --together sends every setup its round at the same time instead of one after another, so whatever else the
// machine does in that window weighs on all of them alike: the paired ratios then spread far less.
// --trace-gc starts the setups with V8's --trace-gc-nvp and adds the bytes promoted to old space per request
// over the same rounds: with at most `concurrency` requests in flight, whatever a request leaves behind beyond
// its own lifetime shows there, separate from what a stalled machine keeps in flight.
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import { Agent, request } from 'undici';
import { createEnvironment } from './lib/env.mjs';
import { loadAverage, memory, preciseCpuSeconds } from './lib/procfs.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const { values: args } = parseArgs({
  options: {
    protocol: { type: 'string', default: 'h1' },
    setups: { type: 'string', default: 'bare,pc-10' },
    'baseline-dist': { type: 'string' },
    rounds: { type: 'string', default: '10' },
    requests: { type: 'string', default: '2000' },
    concurrency: { type: 'string', default: '8' },
    'body-bytes': { type: 'string', default: '0' },
    // Extra node/V8 flags for every setup's process (e.g. --trace-pretenuring), space-separated; output in their logs (--keep).
    'node-flags': { type: 'string', default: '' },
    dist: { type: 'string', default: join(here, '..', 'dist') },
    json: { type: 'string' },
    'trace-gc': { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    together: { type: 'boolean', default: false },
  },
});
const together = args.together;
const protocol = args.protocol;
if (!['h1', 'h2', 'grpc'].includes(protocol)) throw new Error(`--protocol h1, h2 or grpc, not ${protocol}`);
const rounds = Number(args.rounds);
const perRound = Number(args.requests);
const concurrency = Number(args.concurrency);
const bodyBytes = Number(args['body-bytes']);
if (bodyBytes > 0 && protocol !== 'h1') throw new Error('--body-bytes is for --protocol h1');
const setups = args.setups.split(',');
if (args['baseline-dist'] && setups.includes('pc-10') && !setups.includes('pc-10-baseline')) setups.push('pc-10-baseline');
const tmp = mkdtempSync(join(tmpdir(), 'portcullis-cpu-cost-'));
const log = (m) => process.stderr.write(`[cpu-cost ${new Date().toISOString().slice(11, 19)}] ${m}\n`);

const traceGc = args['trace-gc'];
const env = await createEnvironment({ dist: resolve(args.dist), baselineDist: args['baseline-dist'] && resolve(args['baseline-dist']), tmp, setups, log, nodeOptions: [...(traceGc ? ['--trace-gc-nvp'] : []), ...args['node-flags'].split(' ').filter(Boolean)] });

/** The setup's stdout log, where --trace-gc-nvp writes one line per collection. */
const gcLog = (name) => join(tmp, `${name}.stdout.log`);
const logSize = (name) => (existsSync(gcLog(name)) ? statSync(gcLog(name)).size : 0);
/** Bytes promoted to old space by the collections logged between two offsets of the setup's log. */
function promotedBetween(name, from, to) {
  const text = readFileSync(gcLog(name)).subarray(from, to).toString('utf8');
  let bytes = 0;
  for (const m of text.matchAll(/ promoted=(\d+)/g)) bytes += Number(m[1]);
  return bytes;
}

/** A client for one setup: send(n) makes n requests, `concurrency` in flight, and throws unless all succeed. */
function clientFor(name) {
  const s = env.info.setups[name];
  const ep = s.endpoints[protocol];
  const tls = ep.tls && { ca: readFileSync(ep.tls.ca), cert: readFileSync(ep.tls.cert), key: readFileSync(ep.tls.key), servername: ep.tls.servername };
  const pid = s.pids()[0];
  const loop = async (n, one) => {
    let next = 0;
    let failed = 0;
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (next < n) {
        next++;
        if (!(await one())) failed++;
      }
    }));
    if (failed > 0) throw new Error(`${name}: ${failed} of ${n} requests failed`);
  };
  if (protocol === 'h1') {
    const agent = new Agent({ connections: concurrency, connect: tls ?? {} });
    const url = `${ep.url}${bodyBytes > 0 ? '/api/upload' : '/api/items'}`;
    const body = bodyBytes > 0 ? Buffer.alloc(bodyBytes, 0x61) : null;
    const one = async () => {
      const res = await request(url, { dispatcher: agent, headers: s.headers, ...(body ? { method: 'POST', body } : {}) });
      await res.body.dump();
      return res.statusCode === 200;
    };
    return { pid, send: (n) => loop(n, one), close: () => agent.close() };
  }
  if (protocol === 'h2') {
    const session = http2.connect(ep.url, tls ? { ...tls, ALPNProtocols: ['h2'] } : {});
    session.on('error', () => {});
    const one = () => new Promise((res) => {
      const req = session.request({ ':method': 'GET', ':path': '/api/h2', ...(s.headers ?? {}) }, { endStream: true });
      let status = 0;
      req.on('response', (h) => { status = Number(h[':status']); });
      req.on('data', () => {});
      req.on('close', () => res(status === 200));
      req.on('error', () => res(false));
    });
    return { pid, send: (n) => loop(n, one), close: () => new Promise((res) => session.close(res)) };
  }
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(join(here, 'bench.proto'), { keepCase: true }));
  const target = ep.url.replace(/^https?:\/\//, '');
  const creds = tls ? grpc.credentials.createSsl(tls.ca, tls.key, tls.cert) : grpc.credentials.createInsecure();
  const client = new pkg.loadtest.Bench(target, creds, tls ? { 'grpc.ssl_target_name_override': tls.servername, 'grpc.default_authority': tls.servername } : {});
  const metadata = new grpc.Metadata();
  for (const [k, v] of Object.entries(s.headers ?? {})) metadata.set(k, v);
  const payload = Buffer.alloc(64, 1);
  const one = () => new Promise((res) => client.Unary({ payload }, metadata, { deadline: Date.now() + 10_000 }, (err) => res(!err)));
  return { pid, send: (n) => loop(n, one), close: () => client.close() };
}

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
let result;
try {
  const clients = Object.fromEntries(setups.map((name) => [name, clientFor(name)]));
  // Warm-up: JIT, TLS sessions and connections, untimed.
  for (const name of setups) await clients[name].send(perRound);
  const perRequestUs = Object.fromEntries(setups.map((s) => [s, []]));
  const promoted = Object.fromEntries(setups.map((s) => [s, []]));
  const rssMb = Object.fromEntries(setups.map((s) => [s, 0]));
  const loads = [];
  /** One setup's share of a round: its CPU time (and promotion) over the round, divided by its requests. */
  const measure = async (name, send) => {
    const c = clients[name];
    const cpu0 = preciseCpuSeconds(c.pid);
    const log0 = traceGc ? logSize(name) : 0;
    const sampleRss = () => { rssMb[name] = Math.max(rssMb[name], memory(c.pid)?.rssMb ?? 0); };
    const rssTimer = setInterval(sampleRss, 100);
    await send();
    clearInterval(rssTimer);
    // The decision log is written in batches within 100 ms: its cost lands in this round.
    await new Promise((res) => setTimeout(res, 150));
    perRequestUs[name].push(((preciseCpuSeconds(c.pid) - cpu0) * 1e6) / perRound);
    sampleRss();
    if (traceGc) promoted[name].push(promotedBetween(name, log0, logSize(name)) / perRound);
  };
  for (let r = 0; r < rounds; r++) {
    loads.push(loadAverage()?.one);
    if (together) {
      // Every setup's requests in the same window: whatever the machine does meanwhile, all of them share it.
      await Promise.all(setups.map((name) => measure(name, () => clients[name].send(perRound))));
      continue;
    }
    // Rotating order, so no setup always follows the same one.
    const order = setups.map((_, i) => setups[(i + r) % setups.length]);
    for (const name of order) await measure(name, () => clients[name].send(perRound));
  }
  const ratio = (a, b) => {
    if (!perRequestUs[a] || !perRequestUs[b]) return undefined;
    const rs = perRequestUs[a].map((x, i) => x / perRequestUs[b][i]);
    return { median: median(rs), min: Math.min(...rs), max: Math.max(...rs) };
  };
  result = {
    protocol, body_bytes: bodyBytes, rounds, requests_per_round: perRound, concurrency, together,
    cpu_us_per_request: Object.fromEntries(setups.map((s) => [s, { median: median(perRequestUs[s]), all: perRequestUs[s].map((x) => Math.round(x)) }])),
    // Against each reference: bare (and bare-bindfix) and the previous build.
    ratios: Object.fromEntries(setups.flatMap((a) => setups.filter((b) => b !== a && ['bare', 'bare-bindfix', 'pc-10-baseline'].includes(b) && !a.startsWith('bare')).map((b) => [`${a}/${b}`, ratio(a, b)]))),
    load_average_1m: { min: Math.min(...loads), max: Math.max(...loads) },
    // VmRSS sampled every 100 ms during the rounds: the largest seen (not VmHWM, which includes start-up).
    rss_mb_max: rssMb,
    ...(traceGc ? { promoted_bytes_per_request: Object.fromEntries(setups.map((s) => [s, { mean: promoted[s].reduce((a, b) => a + b, 0) / rounds, all: promoted[s].map(Math.round) }])) } : {}),
  };
  await Promise.all(Object.values(clients).map((c) => c.close()));
} finally {
  await env.stop();
  if (args.keep) log(`kept ${tmp}`);
  else rmSync(tmp, { recursive: true, force: true });
}
process.stdout.write(`\nCPU per request, ${protocol}${bodyBytes > 0 ? ` POST ${bodyBytes} B` : ''}, ${rounds} rounds x ${perRound} requests, ${concurrency} in flight${together ? ' per setup, setups together' : ''}, load average ${result.load_average_1m.min}-${result.load_average_1m.max}\n\n`);
process.stdout.write('| Setup | µs per request (median) | peak RSS in the rounds | rounds |\n|---|---|---|---|\n');
for (const [s, v] of Object.entries(result.cpu_us_per_request)) process.stdout.write(`| \`${s}\` | ${v.median.toFixed(1)} | ${result.rss_mb_max[s].toFixed(1)} MB | ${v.all.join(' ')} |\n`);
process.stdout.write('\n| Paired ratio | median | range |\n|---|---|---|\n');
for (const [k, v] of Object.entries(result.ratios)) process.stdout.write(`| ${k} | ${v.median.toFixed(3)} | ${v.min.toFixed(3)}-${v.max.toFixed(3)} |\n`);
if (result.promoted_bytes_per_request) {
  process.stdout.write('\n| Setup | promoted to old space per request (mean) | bytes per request, by round |\n|---|---|---|\n');
  for (const [s, b] of Object.entries(result.promoted_bytes_per_request)) process.stdout.write(`| \`${s}\` | ${(b.mean / 1024).toFixed(2)} KB | ${b.all.join(' ')} |\n`);
}
if (args.json) writeFileSync(args.json, JSON.stringify(result, null, 1) + '\n');
