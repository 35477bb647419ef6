// Measures when each inbound timeout fires against its configured limit: slow request head (headersTimeout),
// stalled body (bodyTimeout), silent workload (upstreamTimeout), a TLS handshake that never completes
// (tlsHandshakeTimeout) and a caller that stops reading its response (idleTimeout), over real sockets against
// `portcullis run` built by the test harness.
// Usage: npx tsc -p . && node loadtest/timeouts.mjs [--limit 10s] [--samples 3]
import { parseArgs } from 'node:util';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const { values } = parseArgs({ options: { limit: { type: 'string', default: '1s' }, samples: { type: 'string', default: '5' } } });
const limit = values.limit;
const limitMs = limit.endsWith('ms') ? Number(limit.slice(0, -2)) : Number(limit.slice(0, -1)) * 1000;
const samples = Number(values.samples);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { startProxy, startH1Upstream, ALLOW_FRONTEND_POLICY } = await import(join(root, 'dist/test/integration/harness.js'));

// A workload that reads every request and never answers.
const workload = await startH1Upstream(() => undefined);
const proxy = await startProxy({ policy: ALLOW_FRONTEND_POLICY, upstream: workload.url, flags: ['--headers-timeout', limit, '--body-timeout', limit, '--upstream-timeout', limit, '--tls-handshake-timeout', limit] });
const svid = proxy.svids.frontend;
// A workload that streams until its response is cut, and notes when it was (the idle limit's end of the exchange).
let cutAt = 0;
const streaming = await startH1Upstream(undefined, {
  streamBody(req, res) {
    req.resume();
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    const chunk = Buffer.alloc(64 * 1024, 7);
    const pump = () => { while (res.write(chunk)); res.once('drain', pump); };
    res.on('close', () => { cutAt = performance.now(); });
    pump();
  },
});
const idleProxy = await startProxy({ policy: ALLOW_FRONTEND_POLICY, upstream: streaming.url, flags: ['--idle-timeout', limit] });

/** ms from the moment `bytes` were written until the first answer byte. */
function firstAnswer(bytes) {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port: proxy.port, ca: proxy.caPem, cert: svid.chainPem, key: svid.keyPem, ALPNProtocols: ['http/1.1'] }, () => {
      let start = performance.now();
      s.write(bytes, () => { start = performance.now(); });
      s.once('data', () => { resolve(performance.now() - start); s.destroy(); });
    });
    s.on('error', () => undefined);
  });
}
/** ms from a partial TLS record until the connection is closed. */
function handshakeCut() {
  return new Promise((resolve) => {
    const s = net.connect(proxy.port, '127.0.0.1', () => {
      const start = performance.now();
      s.write(Buffer.from([0x16, 0x03, 0x01]));
      s.on('close', () => resolve(performance.now() - start));
    });
    s.on('error', () => undefined);
  });
}
/**
 * ms from the request until the workload's response is cut, for a caller that never reads: the buffers on the way
 * fill within milliseconds of the request, and from then on no byte moves (so the figure is a little over the limit).
 */
function idleCut() {
  return new Promise((resolve) => {
    cutAt = 0;
    const s = tls.connect({ host: '127.0.0.1', port: idleProxy.port, ca: idleProxy.caPem, cert: svid.chainPem, key: svid.keyPem, ALPNProtocols: ['http/1.1'] }, () => {
      const start = performance.now();
      s.write('GET /public/big HTTP/1.1\r\nHost: api\r\n\r\n');
      s.pause();
      const wait = setInterval(() => {
        if (cutAt === 0 && performance.now() - start < limitMs * 3) return;
        clearInterval(wait);
        s.destroy();
        resolve((cutAt || Number.NaN) - start);
      }, 5);
    });
    s.on('error', () => undefined);
  });
}
const cases = {
  headersTimeout: () => firstAnswer('GET /public/a HTTP/1.1\r\nHost: api\r\nX-Slow: '),
  bodyTimeout: () => firstAnswer('POST /upload HTTP/1.1\r\nHost: api\r\ncontent-length: 10\r\n\r\nabc'),
  upstreamTimeout: () => firstAnswer('GET /public/a HTTP/1.1\r\nHost: api\r\n\r\n'),
  tlsHandshakeTimeout: handshakeCut,
  idleTimeout: idleCut,
};
const load = loadavg().map((x) => x.toFixed(2)).join(' ');
for (const [name, run] of Object.entries(cases)) {
  const ratios = [];
  for (let i = 0; i < samples; i++) ratios.push((await run()) / limitMs);
  process.stdout.write(`${name.padEnd(20)} limit ${limit}: fired at ${ratios.map((r) => `${r.toFixed(3)}x`).join(' ')}\n`);
}
process.stdout.write(`load average before: ${load}; after: ${loadavg().map((x) => x.toFixed(2)).join(' ')}\n`);
await proxy.stop();
await idleProxy.stop();
await workload.close();
await streaming.close();
process.exit(0);
