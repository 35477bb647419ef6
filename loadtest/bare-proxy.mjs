// Owns the load test's `bare` setup: the cheapest mTLS proxy one Node event loop can be (node:https + an undici
// Pool for HTTP/1.1, node:http2 both ways for HTTP/2 and gRPC), one path rule, no policy, no identity, no log.
// A reference for what Portcullis adds on top, NOT the product. Usage: node loadtest/bare-proxy.mjs '<json>'

import { readFileSync } from 'node:fs';
import https from 'node:https';
import http2 from 'node:http2';
import { pathToFileURL } from 'node:url';
import { Pool } from 'undici';

const cfg = JSON.parse(process.argv[2] ?? '{}');
// `bare-bindfix`: the one Node 20 workaround Portcullis applies to its HTTP/2 client leg, so the two compare like for like.
if (cfg.bindFix) (await import(pathToFileURL(cfg.bindFix).href)).useScavengeFriendlyAsyncBind();
const tls = {
  cert: readFileSync(cfg.cert), key: readFileSync(cfg.key), ca: readFileSync(cfg.ca),
  requestCert: true, rejectUnauthorized: true,
};
/** The one rule: the benchmark's paths are allowed, everything else is refused. */
const allowed = (path) => path.startsWith('/api/') || path.startsWith('/loadtest.Bench/');
const hopByHop = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'host']);

// --- HTTP/1.1: undici's stream() writes the upstream body straight into the ServerResponse.
const pool = new Pool(`http://127.0.0.1:${cfg.upstream.h1}`, { connections: 128, pipelining: 1, keepAliveTimeout: 60_000 });
const h1 = https.createServer(tls, (req, res) => {
  if (!allowed(req.url)) { res.writeHead(403, { 'content-length': '0' }); res.end(); return; }
  const headers = {};
  for (const [k, v] of Object.entries(req.headers)) if (!hopByHop.has(k)) headers[k] = v;
  const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
  pool.stream({ method: req.method, path: req.url, headers, body: hasBody ? req : null }, ({ statusCode, headers: up }) => {
    const out = {};
    for (const [k, v] of Object.entries(up)) if (!hopByHop.has(k)) out[k] = v;
    res.writeHead(statusCode, out);
    return res;
  }, (err) => {
    if (!err) return;
    if (!res.headersSent) { res.writeHead(502, { 'content-length': '0' }); res.end(); } else res.destroy();
  });
});
h1.keepAliveTimeout = 120_000;

// --- HTTP/2 (and gRPC): one cleartext session to the upstream per listener, streams relayed with trailers.
function h2Proxy(upstreamPort) {
  let session = null;
  const upstream = () => {
    if (!session || session.closed || session.destroyed) {
      session = http2.connect(`http://127.0.0.1:${upstreamPort}`);
      session.on('error', () => { session = null; });
    }
    return session;
  };
  const server = http2.createSecureServer({ ...tls, settings: { maxConcurrentStreams: 1000 } });
  server.on('stream', (stream, headers) => {
    stream.on('error', () => {});
    if (!allowed(headers[':path'])) { stream.respond({ ':status': 403 }, { endStream: true }); return; }
    const out = {};
    for (const [k, v] of Object.entries(headers)) if (!hopByHop.has(k)) out[k] = v;
    const up = upstream().request(out, { endStream: stream.readableEnded });
    up.on('error', () => { if (!stream.headersSent) stream.respond({ ':status': 502 }, { endStream: true }); else stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR); });
    let trailers = null;
    up.on('trailers', (t) => { trailers = t; });
    up.on('response', (h) => {
      stream.respond(h, { waitForTrailers: true });
      stream.once('wantTrailers', () => stream.sendTrailers(trailers ?? {}));
      up.pipe(stream);
    });
    if (!stream.readableEnded) stream.pipe(up);
  });
  return server;
}

function listen(server, port) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
}

await Promise.all([
  listen(h1, cfg.listen.h1),
  listen(h2Proxy(cfg.upstream.h2), cfg.listen.h2),
  listen(h2Proxy(cfg.upstream.grpc), cfg.listen.grpc),
]);
process.stdout.write('READY\n');
for (const signal of ['SIGTERM', 'SIGINT']) process.once(signal, () => process.exit(0));
