// Owns the load test's upstream workload: an HTTP/1.1 server, an HTTP/2 cleartext server and a gRPC server
// (@grpc/grpc-js) on 127.0.0.1, port 0. Prints {"h1","h2","grpc"} ports as one JSON line, then serves until SIGTERM.

import http from 'node:http';
import http2 from 'node:http2';
import { fileURLToPath } from 'node:url';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';

const SMALL_BODY = Buffer.from('hello from the upstream\n');
const protoPath = fileURLToPath(new URL('./bench.proto', import.meta.url));

function listen(server) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server.address().port));
  });
}

// Keep-alive longer than any proxy's idle pool timeout, so the proxy (not the upstream) closes idle sockets.
const h1 = http.createServer({ keepAliveTimeout: 120_000, headersTimeout: 121_000, requestTimeout: 0 }, (req, res) => {
  if (req.method === 'POST') {
    let bytes = 0;
    req.on('data', (chunk) => { bytes += chunk.length; });
    req.on('end', () => {
      const body = Buffer.from(`{"received":${bytes}}\n`);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
      res.end(body);
    });
    return;
  }
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': SMALL_BODY.length });
  res.end(SMALL_BODY);
});
h1.keepAliveTimeout = 120_000;

const h2 = http2.createServer({ settings: { maxConcurrentStreams: 1000 } });
h2.on('stream', (stream) => {
  stream.on('error', () => {});
  stream.resume();
  stream.on('end', () => {
    if (stream.destroyed) return;
    stream.respond({ ':status': 200, 'content-type': 'text/plain', 'content-length': SMALL_BODY.length });
    stream.end(SMALL_BODY);
  });
});

const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(protoPath, { keepCase: true }));
const grpcServer = new grpc.Server({ 'grpc.max_concurrent_streams': 1000 });
grpcServer.addService(pkg.loadtest.Bench.service, {
  Unary: (call, callback) => callback(null, { payload: call.request.payload }),
  Stream: (call) => {
    const count = Math.min(call.request.count || 10, 10_000);
    const payload = Buffer.alloc(Math.min(call.request.size || 64, 65_536), 0x61);
    let sent = 0;
    const pump = () => {
      while (sent < count) {
        sent++;
        if (!call.write({ payload })) { call.once('drain', pump); return; }
      }
      call.end();
    };
    call.on('error', () => {});
    pump();
  },
});

const grpcPort = await new Promise((resolve, reject) => {
  grpcServer.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port)));
});
const ports = { h1: await listen(h1), h2: await listen(h2), grpc: grpcPort };
process.stdout.write(JSON.stringify(ports) + '\n');

const stop = () => {
  h1.closeAllConnections?.();
  h1.close();
  h2.close();
  grpcServer.forceShutdown();
  setTimeout(() => process.exit(0), 200).unref();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
