// Owns one load measurement, run in its own process: saturation (closed loop: autocannon for HTTP/1.1,
// node:http2 and @grpc/grpc-js loops) or a fixed arrival rate (open loop, latency from the scheduled time).
// Usage: node loadtest/loader.mjs '<json spec>'  ->  one JSON result line on stdout.

import { readFileSync } from 'node:fs';
import http2 from 'node:http2';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import { Pool } from 'undici';

const spec = JSON.parse(process.argv[2] ?? '{}');
const protoPath = fileURLToPath(new URL('./bench.proto', import.meta.url));

/** Client certificate material, or null for plaintext targets (direct, or the mesh's outbound sidecar). */
function tlsMaterial() {
  if (!spec.tls) return null;
  return {
    cert: readFileSync(spec.tls.cert),
    key: readFileSync(spec.tls.key),
    ca: readFileSync(spec.tls.ca),
    servername: spec.tls.servername,
  };
}

function percentiles(samplesUs) {
  const sorted = Float64Array.from(samplesUs).sort();
  const at = (q) => (sorted.length === 0 ? null : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] / 1000);
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    count: sorted.length,
    mean_ms: sorted.length ? sum / sorted.length / 1000 : null,
    p50_ms: at(0.5), p90_ms: at(0.9), p99_ms: at(0.99), p999_ms: at(0.999),
    max_ms: sorted.length ? sorted[sorted.length - 1] / 1000 : null,
  };
}

const REQUEST_TIMEOUT_MS = 5000;
const nowUs = () => Number(process.hrtime.bigint()) / 1000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Runs `fn` over the measured window only, reporting the loader's own CPU seconds for that window. */
async function measured(fn) {
  // Markers tell run.mjs when to start and stop sampling the servers' CPU (warm-up excluded).
  process.stdout.write('MEASURE_START\n');
  const cpu0 = process.cpuUsage();
  const t0 = nowUs();
  const result = await fn();
  const cpu = process.cpuUsage(cpu0);
  process.stdout.write('MEASURE_END\n');
  return { ...result, wall_s: (nowUs() - t0) / 1e6, loader_cpu_s: (cpu.user + cpu.system) / 1e6 };
}

// ---------------------------------------------------------------------------------------------------
// HTTP/1.1 saturation: autocannon, fixed connections, keep-alive, no pipelining.

function autocannonOnce(durationS) {
  const t = tlsMaterial();
  const body = spec.bodyBytes ? Buffer.alloc(spec.bodyBytes, 0x62) : undefined;
  return new Promise((resolve, reject) => {
    autocannon({
      url: spec.url,
      connections: spec.connections,
      pipelining: 1,
      duration: durationS,
      method: spec.method ?? 'GET',
      headers: { ...(spec.headers ?? {}), ...(body ? { 'content-type': 'application/octet-stream' } : {}) },
      body,
      timeout: 10,
      ...(t ? { servername: t.servername, tlsOptions: { cert: t.cert, key: t.key, ca: t.ca } } : {}),
    }, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

async function h1Saturation() {
  if (spec.warmupS > 0) await autocannonOnce(spec.warmupS);
  return measured(async () => {
    const r = await autocannonOnce(spec.durationS);
    const ok = r['2xx'];
    return {
      requests: ok,
      rps: ok / r.duration,
      errors: r.errors + r.timeouts,
      non2xx: r.non2xx,
      // autocannon's histogram has 1 ms resolution: latency at saturation is indicative only.
      latency: { p50_ms: r.latency.p50, p99_ms: r.latency.p99, mean_ms: r.latency.average, max_ms: r.latency.max },
    };
  });
}

// ---------------------------------------------------------------------------------------------------
// HTTP/1.1 fixed arrival rate: requests leave on a timetable; latency counts from the scheduled time, so a
// stalled server is charged for every request it delayed (no coordinated omission).

/**
 * Open-loop driver shared by every rate kind: `one()` resolves with true for a 2xx/OK, false for a non-2xx,
 * and throws for an error; latency is measured from the scheduled send time.
 */
async function rateRun(one) {
  let errors = 0;
  let non2xx = 0;
  const count = async () => {
    try {
      if (!(await one())) non2xx++;
    } catch {
      errors++;
    }
  };

  async function schedule(rate, seconds, samples) {
    const intervalUs = 1e6 / rate;
    const total = Math.round(rate * seconds);
    const start = nowUs() + 2000;
    const inflight = new Set();
    let next = 0;
    while (next < total) {
      const now = nowUs();
      while (next < total && start + next * intervalUs <= now) {
        const scheduled = start + next * intervalUs;
        next++;
        const p = count().then(() => { if (samples) samples.push(nowUs() - scheduled); });
        inflight.add(p);
        p.finally(() => inflight.delete(p));
      }
      // Wake up often enough to keep the timetable at 5,000/s; setImmediate would spin a core.
      await sleep(Math.max(0, Math.min(1, (start + next * intervalUs - nowUs()) / 1000)));
    }
    await Promise.allSettled([...inflight]);
  }

  if (spec.warmupS > 0) await schedule(spec.rate, spec.warmupS, null);
  errors = 0;
  non2xx = 0;
  const samples = [];
  const result = await measured(async () => {
    await schedule(spec.rate, spec.durationS, samples);
    return {};
  });
  // Achieved rate: completions over the time until the last one (a server that falls behind stretches it).
  return { ...result, requests: samples.length - errors - non2xx, rps: samples.length / result.wall_s, target_rps: spec.rate, errors, non2xx, latency: percentiles(samples) };
}

async function h1Rate() {
  const t = tlsMaterial();
  const pool = new Pool(new URL(spec.url).origin, {
    connections: spec.connections,
    pipelining: 1,
    keepAliveTimeout: 30_000,
    ...(t ? { connect: { cert: t.cert, key: t.key, ca: t.ca, servername: t.servername } } : {}),
  });
  const path = new URL(spec.url).pathname;
  const headers = spec.headers ?? {};
  const result = await rateRun(async () => {
    const res = await pool.request({ method: 'GET', path, headers, headersTimeout: REQUEST_TIMEOUT_MS, bodyTimeout: REQUEST_TIMEOUT_MS });
    await res.body.dump();
    return res.statusCode >= 200 && res.statusCode <= 299;
  });
  await pool.close();
  return result;
}

/** HTTP/2 GET at a fixed rate over `sessions` connections (round robin). */
async function h2Rate() {
  const sessions = await Promise.all(Array.from({ length: spec.sessions ?? 4 }, h2Connect));
  for (const s of sessions) s.on('error', () => {});
  const path = new URL(spec.url).pathname;
  let i = 0;
  const result = await rateRun(() => new Promise((resolve, reject) => {
    const session = sessions[i++ % sessions.length];
    const req = session.request({ ':method': 'GET', ':path': path, ...(spec.headers ?? {}) }, { endStream: true });
    req.setTimeout(REQUEST_TIMEOUT_MS, () => { req.close(http2.constants.NGHTTP2_CANCEL); reject(new Error('timeout')); });
    let status = 0;
    req.on('response', (h) => { status = h[':status']; });
    req.on('data', () => {});
    req.on('end', () => resolve(status >= 200 && status < 300));
    req.on('error', reject);
    req.on('close', () => { if (!req.readableEnded) reject(new Error('closed')); });
  }));
  for (const s of sessions) s.close();
  return result;
}

/** gRPC unary at a fixed rate on one channel. */
async function grpcRate() {
  const client = grpcClient();
  const metadata = new grpc.Metadata();
  for (const [k, v] of Object.entries(spec.headers ?? {})) metadata.set(k, v);
  await new Promise((resolve, reject) => client.waitForReady(Date.now() + 10_000, (err) => (err ? reject(err) : resolve())));
  const payload = Buffer.alloc(spec.payloadBytes ?? 64, 0x63);
  const result = await rateRun(() => new Promise((resolve, reject) => {
    client.Unary({ payload }, metadata, { deadline: Date.now() + REQUEST_TIMEOUT_MS }, (err) => (err ? reject(err) : resolve(true)));
  }));
  client.close();
  return result;
}

// ---------------------------------------------------------------------------------------------------
// HTTP/2 saturation: `sessions` connections, `streamsPerSession` requests in flight on each.

function h2Connect() {
  const t = tlsMaterial();
  const url = new URL(spec.url);
  const authority = `${url.protocol === 'https:' ? 'https' : 'http'}://${url.host}`;
  return new Promise((resolve, reject) => {
    const s = http2.connect(authority, t ? { cert: t.cert, key: t.key, ca: t.ca, servername: t.servername, ALPNProtocols: ['h2'] } : {});
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

async function h2Saturation() {
  const sessions = await Promise.all(Array.from({ length: spec.sessions }, h2Connect));
  for (const s of sessions) s.on('error', () => {});
  const path = new URL(spec.url).pathname;
  let ok = 0;
  let errors = 0;
  let non2xx = 0;
  let counting = false;
  let stopAt = 0;
  const samples = [];

  function one(session) {
    return new Promise((resolve) => {
      const t0 = nowUs();
      const req = session.request({ ':method': 'GET', ':path': path, ...(spec.headers ?? {}) }, { endStream: true });
      // A stream that never completes is an error, not a stalled run.
      let timedOut = false;
      req.setTimeout(REQUEST_TIMEOUT_MS, () => { timedOut = true; req.close(http2.constants.NGHTTP2_CANCEL); });
      let status = 0;
      req.on('response', (h) => { status = h[':status']; });
      req.on('data', () => {});
      req.on('end', () => {
        if (counting) {
          if (timedOut) errors++;
          else if (status >= 200 && status < 300) { ok++; samples.push(nowUs() - t0); } else non2xx++;
        }
        resolve();
      });
      req.on('error', () => { if (counting) errors++; resolve(); });
      req.on('close', () => { if (!req.readableEnded) { if (counting) errors++; resolve(); } });
    });
  }
  async function loop(session) {
    while (nowUs() < stopAt) await one(session);
  }
  async function phase(seconds) {
    stopAt = nowUs() + seconds * 1e6;
    await Promise.all(sessions.flatMap((s) => Array.from({ length: spec.streamsPerSession }, () => loop(s))));
  }
  if (spec.warmupS > 0) await phase(spec.warmupS);
  counting = true;
  const result = await measured(async () => { await phase(spec.durationS); return {}; });
  for (const s of sessions) s.close();
  return { ...result, requests: ok, rps: ok / result.wall_s, errors, non2xx, latency: percentiles(samples) };
}

// ---------------------------------------------------------------------------------------------------
// gRPC saturation: `concurrency` calls in flight on one channel (unary), or concurrent server streams.

function grpcClient() {
  const t = tlsMaterial();
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(protoPath, { keepCase: true }));
  const target = new URL(spec.url).host;
  const creds = t ? grpc.credentials.createSsl(t.ca, t.key, t.cert) : grpc.credentials.createInsecure();
  const options = t ? { 'grpc.ssl_target_name_override': t.servername, 'grpc.default_authority': t.servername } : {};
  return new pkg.loadtest.Bench(target, creds, { ...options, 'grpc.max_receive_message_length': 8 * 1024 * 1024 });
}

async function grpcSaturation() {
  const client = grpcClient();
  const metadata = new grpc.Metadata();
  for (const [k, v] of Object.entries(spec.headers ?? {})) metadata.set(k, v);
  await new Promise((resolve, reject) => client.waitForReady(Date.now() + 10_000, (err) => (err ? reject(err) : resolve())));
  const payload = Buffer.alloc(spec.payloadBytes ?? 64, 0x63);
  let ok = 0;
  let messages = 0;
  let errors = 0;
  let counting = false;
  let stopAt = 0;
  const samples = [];

  function unary() {
    return new Promise((resolve) => {
      const t0 = nowUs();
      client.Unary({ payload }, metadata, { deadline: Date.now() + REQUEST_TIMEOUT_MS }, (err) => {
        if (counting) { if (err) errors++; else { ok++; messages++; samples.push(nowUs() - t0); } }
        resolve();
      });
    });
  }
  function stream() {
    return new Promise((resolve) => {
      const t0 = nowUs();
      let got = 0;
      const call = client.Stream({ count: spec.streamMessages, size: spec.payloadBytes ?? 64 }, metadata, { deadline: Date.now() + REQUEST_TIMEOUT_MS });
      call.on('data', () => { got++; });
      call.on('error', () => { if (counting) errors++; resolve(); });
      call.on('end', () => {
        if (counting) {
          messages += got;
          if (got === spec.streamMessages) { ok++; samples.push(nowUs() - t0); } else errors++;
        }
        resolve();
      });
    });
  }
  const call = spec.kind === 'grpc-stream' ? stream : unary;
  async function loop() {
    while (nowUs() < stopAt) await call();
  }
  async function phase(seconds) {
    stopAt = nowUs() + seconds * 1e6;
    await Promise.all(Array.from({ length: spec.concurrency }, loop));
  }
  if (spec.warmupS > 0) await phase(spec.warmupS);
  counting = true;
  const result = await measured(async () => { await phase(spec.durationS); return {}; });
  client.close();
  return { ...result, requests: ok, rps: ok / result.wall_s, messages_per_s: messages / result.wall_s, errors, non2xx: 0, latency: percentiles(samples) };
}

// ---------------------------------------------------------------------------------------------------

const kinds = { 'h1-sat': h1Saturation, 'h1-rate': h1Rate, 'h2-rate': h2Rate, 'grpc-unary-rate': grpcRate, 'h2-sat': h2Saturation, 'grpc-unary': grpcSaturation, 'grpc-stream': grpcSaturation };
const run = kinds[spec.kind];
if (!run) {
  process.stderr.write(`loader: unknown kind ${spec.kind}\n`);
  process.exit(2);
}
const result = await run();
process.stdout.write(JSON.stringify(result) + '\n');
process.exit(0);
