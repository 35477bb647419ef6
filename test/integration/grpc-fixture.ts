// gRPC fixture for integration tests: an @grpc/grpc-js Echo server (h2c upstream) with all four call kinds,
// recording metadata, deadlines and cancellations, and a client factory presenting an X509-SVID.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { join } from 'node:path';
import { repoRoot } from '../helpers/paths.js';
import type { IssuedCert } from '../helpers/pki.js';

export interface EchoRequest { message: string; count: number; delay_ms: number }
export interface EchoReply { message: string; peer: string }

export interface GrpcCallRecord { method: string; metadata: Record<string, unknown>; deadline: number; cancelled: boolean }

export interface EchoUpstream { port: number; url: string; calls: GrpcCallRecord[]; close(): Promise<void> }

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type EchoClient = grpc.Client & Record<string, any>;

function loadEcho(): grpc.GrpcObject {
  const def = protoLoader.loadSync(join(repoRoot(), 'test/fixtures/echo.proto'), { keepCase: true, defaults: true });
  return grpc.loadPackageDefinition(def);
}

function deadlineOf(call: grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerReadableStream<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>): number {
  const d = call.getDeadline();
  return d instanceof Date ? d.getTime() : Number(d);
}

export async function startEchoUpstream(): Promise<EchoUpstream> {
  const pkg = loadEcho();
  const service = ((pkg['test'] as grpc.GrpcObject)['Echo'] as grpc.ServiceClientConstructor).service;
  const calls: GrpcCallRecord[] = [];
  const record = (method: string, call: Parameters<typeof deadlineOf>[0]): GrpcCallRecord => {
    const r: GrpcCallRecord = { method, metadata: call.metadata.getMap(), deadline: deadlineOf(call), cancelled: false };
    (call as unknown as import('node:events').EventEmitter).on('cancelled', () => { r.cancelled = true; });
    calls.push(r);
    return r;
  };
  const server = new grpc.Server();
  server.addService(service, {
    Unary(call: grpc.ServerUnaryCall<EchoRequest, EchoReply>, cb: grpc.sendUnaryData<EchoReply>) {
      record('Unary', call);
      const reply = (): void => {
        if (call.request.message === 'fail') { cb({ code: grpc.status.FAILED_PRECONDITION, details: 'asked to fail' }); return; }
        const md = new grpc.Metadata();
        md.set('x-trailer', 'yes');
        cb(null, { message: call.request.message, peer: String(call.metadata.get('x-forwarded-client-cert')[0] ?? '') }, md);
      };
      if (call.request.delay_ms > 0) setTimeout(reply, call.request.delay_ms); else reply();
    },
    ClientStream(call: grpc.ServerReadableStream<EchoRequest, EchoReply>, cb: grpc.sendUnaryData<EchoReply>) {
      record('ClientStream', call);
      const parts: string[] = [];
      call.on('data', (m: EchoRequest) => parts.push(m.message));
      call.on('end', () => cb(null, { message: parts.join(','), peer: '' }));
    },
    ServerStream(call: grpc.ServerWritableStream<EchoRequest, EchoReply>) {
      const r = record('ServerStream', call);
      let i = 0;
      const tick = (): void => {
        if (r.cancelled) return;
        if (i >= call.request.count) { call.end(); return; }
        call.write({ message: `${call.request.message}-${i++}`, peer: '' });
        setTimeout(tick, call.request.delay_ms);
      };
      tick();
    },
    Bidi(call: grpc.ServerDuplexStream<EchoRequest, EchoReply>) {
      record('Bidi', call);
      call.on('data', (m: EchoRequest) => call.write({ message: `echo:${m.message}`, peer: '' }));
      call.on('end', () => call.end());
    },
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  return {
    port,
    url: `h2c://127.0.0.1:${port}`,
    calls,
    close: () => new Promise<void>((resolve) => { server.tryShutdown(() => resolve()); setTimeout(() => { server.forceShutdown(); resolve(); }, 500); }),
  };
}

export function echoClient(port: number, caPem: string, cert: IssuedCert | null): EchoClient {
  const pkg = loadEcho();
  const Ctor = (pkg['test'] as grpc.GrpcObject)['Echo'] as grpc.ServiceClientConstructor;
  const creds = cert ? grpc.credentials.createSsl(Buffer.from(caPem), Buffer.from(cert.keyPem), Buffer.from(cert.chainPem)) : grpc.credentials.createSsl(Buffer.from(caPem));
  return new Ctor(`127.0.0.1:${port}`, creds, { 'grpc.ssl_target_name_override': 'localhost', 'grpc.default_authority': 'localhost' }) as EchoClient;
}

export function unary(client: EchoClient, req: Partial<EchoRequest>, opts: { deadlineMs?: number; metadata?: grpc.Metadata } = {}): Promise<{ err: grpc.ServiceError | null; reply: EchoReply | undefined; trailers: grpc.Metadata | undefined }> {
  return new Promise((resolve) => {
    let trailers: grpc.Metadata | undefined;
    const callOpts: grpc.CallOptions = opts.deadlineMs ? { deadline: Date.now() + opts.deadlineMs } : {};
    const call = client['Unary'](req, opts.metadata ?? new grpc.Metadata(), callOpts, (err: grpc.ServiceError | null, reply: EchoReply | undefined) => {
      setImmediate(() => resolve({ err, reply, trailers }));
    }) as grpc.ClientUnaryCall;
    call.on('status', (s: grpc.StatusObject) => { trailers = s.metadata; });
  });
}
