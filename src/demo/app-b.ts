#!/usr/bin/env node
// Entry for service b's container: the demo HTTP API and gRPC service on loopback (the Portcullis sidecar
// shares the network namespace and is the only way in). Env: HTTP_PORT (8080), GRPC_PORT (9090), BIND (127.0.0.1).
import { startServiceB } from './apps.js';

const b = await startServiceB({ host: process.env['BIND'] ?? '127.0.0.1', httpPort: Number(process.env['HTTP_PORT'] ?? 8080), grpcPort: Number(process.env['GRPC_PORT'] ?? 9090) });
process.stdout.write(`service b: HTTP API on :${b.httpPort}, gRPC demo.Orders on :${b.grpcPort}\n`);
const stop = (): void => { void b.close().finally(() => process.exit(0)); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
