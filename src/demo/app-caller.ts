#!/usr/bin/env node
// Entry for the caller containers (service a, intruder): relays curl calls through the local Portcullis
// outbound listeners. Env: PORT (8080), BIND (0.0.0.0), HTTP_TARGET, GRPC_TARGET, AUDIT_TARGET.
import { startCaller } from './apps.js';

const env = process.env;
const caller = await startCaller({
  host: env['BIND'] ?? '0.0.0.0',
  port: Number(env['PORT'] ?? 8080),
  httpTarget: env['HTTP_TARGET'] ?? 'http://127.0.0.1:15001',
  grpcTarget: env['GRPC_TARGET'] ?? '127.0.0.1:15002',
  ...(env['AUDIT_TARGET'] ? { auditTarget: env['AUDIT_TARGET'] } : {}),
});
process.stdout.write(`caller: listening on :${caller.port}; /call/<path>, /call-audit/<path>, /grpc/<GetOrder|DeleteOrder>\n`);
const stop = (): void => { void caller.close().finally(() => process.exit(0)); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
