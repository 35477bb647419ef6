// Test harness for the data-plane integration suites: real PKI files, a real `portcullis run` app (built
// by app.ts from argv like the CLI), recording upstreams (node:http, node:http2) and mTLS clients.

import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, existsSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { Agent, request as undiciRequest } from 'undici';
import { createApp, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config/load.js';
import type { DecisionEventV1 } from '../../src/observe/types.js';
import { sharedTestPki, writePkiFiles, type IssuedCert, type SvidSet } from '../helpers/pki.js';

export const quietLogger = { info() {}, warn() {}, error() {} };

export interface Recorded {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  body: Buffer;
  httpVersion: string;
}

export interface RecordingUpstream {
  port: number;
  url: string;
  requests: Recorded[];
  bytes: number;
  /** Every byte received so far, all connections in arrival order (HTTP/1.1 upstreams only; empty otherwise). */
  raw(): Buffer;
  close(): Promise<void>;
}

type H1Handler = (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer) => void;

/** An HTTP/1.1 upstream that records every request (and every byte) it receives. */
export async function startH1Upstream(handler?: H1Handler, opts: { streamBody?: (req: http.IncomingMessage, res: http.ServerResponse) => void; maxHeaderSize?: number } = {}): Promise<RecordingUpstream> {
  const requests: Recorded[] = [];
  const state = { bytes: 0 };
  const received: Buffer[] = [];
  const server = http.createServer({ ...(opts.maxHeaderSize !== undefined ? { maxHeaderSize: opts.maxHeaderSize } : {}) }, (req, res) => {
    if (opts.streamBody) { requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, body: Buffer.alloc(0), httpVersion: req.httpVersion }); opts.streamBody(req, res); return; }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, body, httpVersion: req.httpVersion });
      if (handler) { handler(req, res, body); return; }
      res.writeHead(200, { 'content-type': 'text/plain', 'x-upstream': 'h1' });
      res.end('upstream ok');
    });
  });
  server.on('connection', (s) => s.on('data', (d: Buffer) => { state.bytes += d.length; received.push(d); }));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    requests,
    get bytes() { return state.bytes; },
    raw: () => Buffer.concat(received),
    async close() { server.closeAllConnections(); await new Promise<void>((r) => server.close(() => r())); },
  };
}

/** An h2c upstream recording every stream. */
export async function startH2Upstream(handler?: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, body: Buffer) => void): Promise<RecordingUpstream> {
  const requests: Recorded[] = [];
  const state = { bytes: 0 };
  const server = http2.createServer();
  server.on('stream', (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, _flags: number, rawHeaders: string[]) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      const body = Buffer.concat(chunks);
      requests.push({ method: String(headers[':method']), url: String(headers[':path']), headers: headers as http.IncomingHttpHeaders, rawHeaders, body, httpVersion: '2.0' });
      if (handler) { handler(stream, headers, body); return; }
      stream.respond({ ':status': 200, 'content-type': 'text/plain', 'x-upstream': 'h2' });
      stream.end('upstream h2 ok');
    });
  });
  server.on('connection', (s: import('node:net').Socket) => s.on('data', (d: Buffer) => { state.bytes += d.length; }));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `h2c://127.0.0.1:${port}`,
    requests,
    get bytes() { return state.bytes; },
    raw: () => Buffer.alloc(0),
    async close() { await new Promise<void>((r) => { server.close(() => r()); setTimeout(r, 200); }); },
  };
}

export interface ProxyUnderTest extends AppUnderTest {
  port: number;
  adminPort: number;
  origin: string;
  /** Events in the decision log so far, waiting (bounded) until at least `min` are present. */
  events(min?: number): Promise<DecisionEventV1[]>;
  /** The last event matching `predicate`, waiting (bounded) for the asynchronous log to catch up. */
  event(predicate: (e: DecisionEventV1) => boolean): Promise<DecisionEventV1 | undefined>;
  metrics(): Promise<string>;
}

export interface ProxyOptions {
  policy: string;
  upstream: string;
  listenerMode?: 'strict' | 'permissive';
  mode?: 'enforce' | 'audit';
  flags?: string[];
}

export const ALLOW_FRONTEND_POLICY = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin, namespace: foo}
spec:
  action: DENY
  rules:
  - to: [{operation: {paths: ["/admin", "/admin/*"]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-frontend, namespace: foo}
spec:
  action: ALLOW
  rules:
  - from: [{source: {principals: ["cluster.local/ns/foo/sa/frontend"]}}]
    to: [{operation: {paths: ["/public/*", "/echo", "/echo/*", "/big", "/slow", "/ws", "/upload", "/test.Echo/*"]}}]
  - from: [{source: {principals: ["cluster.local/ns/foo/sa/admin"]}}]
  - from: [{source: {notPrincipals: ["*"]}}]
    to: [{operation: {paths: ["/anon"]}}]
`;

export interface AppUnderTest {
  dir: string;
  app: App;
  logFile: string;
  policyFile: string;
  svids: SvidSet;
  caPem: string;
  files: ReturnType<typeof writePkiFiles>;
  /** Stops the app and removes its directory. */
  stop(): Promise<void>;
}

export interface AppOptions {
  /** Prefix of the temporary directory holding PKI files, policies and the decision log. */
  dirPrefix: string;
  policy: string;
  /** The `--listener` value. */
  listener: string;
  /** Workload identity flags (`--service-account …`, `--labels …`); the namespace is always foo. */
  workload: string[];
  mode?: 'enforce' | 'audit';
  flags?: string[];
}

/** Writes the shared test PKI and `policy` to a fresh directory and starts `portcullis run` on them, as the CLI would. */
export async function startApp(opts: AppOptions): Promise<AppUnderTest> {
  const dir = mkdtempSync(join(tmpdir(), opts.dirPrefix));
  const { pki, svids } = sharedTestPki();
  const files = writePkiFiles(join(dir, 'pki'), pki, { server: svids.server });
  // Policies get their own directory: the store watches it, and the decision log must not live there.
  mkdirSync(join(dir, 'policies'));
  const policyFile = join(dir, 'policies', 'policy.yaml');
  writeFileSync(policyFile, opts.policy);
  const logFile = join(dir, 'decisions.ndjson');
  const argv = [
    '--listener', opts.listener,
    '--policies', policyFile,
    '--cert', (files.files.server as { cert: string }).cert,
    '--key', (files.files.server as { key: string }).key,
    '--trust-bundle', files.bundle,
    '--namespace', 'foo', ...opts.workload,
    '--admin', '127.0.0.1:0',
    '--decision-log', logFile,
    '--mode', opts.mode ?? 'enforce',
    ...(opts.flags ?? []),
  ];
  const loaded = await loadConfig(argv, { readFile: (p) => readFile(p, 'utf8'), cwd: dir });
  if ('diagnostics' in loaded) throw new Error(`config refused: ${JSON.stringify(loaded.diagnostics)}`);
  const app = createApp(loaded.config, quietLogger);
  await app.start();
  return {
    dir, app, logFile, policyFile, svids, caPem: pki.caCertPem, files,
    async stop() {
      await app.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The non-empty lines of a decision log so far (the last one may still be being appended). */
export function decisionLogLines(logFile: string): string[] {
  return existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').filter((l) => l.trim() !== '') : [];
}

/** The complete events among `lines`: a line still being appended is not an event yet. */
export function parseDecisionLines(lines: readonly string[]): DecisionEventV1[] {
  return lines.flatMap((l) => { try { return [JSON.parse(l) as DecisionEventV1]; } catch { return []; } });
}

export async function startProxy(opts: ProxyOptions): Promise<ProxyUnderTest> {
  const started = await startApp({
    dirPrefix: 'portcullis-it-',
    policy: opts.policy,
    listener: `name=inbound,listen=127.0.0.1:0,upstream=${opts.upstream},mode=${opts.listenerMode ?? 'strict'},workloadPort=8080`,
    workload: ['--service-account', 'httpbin'],
    mode: opts.mode,
    flags: opts.flags,
  });
  const { app, logFile } = started;
  const port = (app.listeners[0] as { address(): AddressInfo }).address().port;
  const adminPort = app.admin?.address.port ?? 0;
  async function events(min = 1): Promise<DecisionEventV1[]> {
    let lines: string[] = [];
    for (let i = 0; i < 100; i++) {
      lines = decisionLogLines(logFile);
      if (lines.length >= min) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    return parseDecisionLines(lines);
  }
  return {
    ...started, port, adminPort, origin: `https://127.0.0.1:${port}`,
    events,
    async event(predicate) {
      for (let i = 0; i < 100; i++) {
        const found = (await events(0)).filter(predicate).at(-1);
        if (found) return found;
        await new Promise((r) => setTimeout(r, 20));
      }
      return undefined;
    },
    async metrics() {
      const res = await undiciRequest(`http://127.0.0.1:${adminPort}/metrics`);
      return res.body.text();
    },
  };
}

/** A port nothing listens on (bound once, then released). */
export async function closedPort(): Promise<number> {
  const s = net.createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** An undici Agent presenting `cert` (an X509-SVID) to the proxy. */
export function mtlsAgent(proxy: { caPem: string }, cert: IssuedCert | null, opts: { alpn?: string[] } = {}): Agent {
  return new Agent({
    connect: {
      ca: proxy.caPem,
      ...(cert ? { cert: cert.chainPem, key: cert.keyPem } : {}),
      ...(opts.alpn ? { ALPNProtocols: opts.alpn } : {}),
    },
    ...(opts.alpn?.includes('h2') ? { allowH2: true } : {}),
  });
}

export function h2Client(proxy: { caPem: string; port: number }, cert: IssuedCert | null): http2.ClientHttp2Session {
  const session = http2.connect(`https://127.0.0.1:${proxy.port}`, {
    ca: proxy.caPem,
    ...(cert ? { cert: cert.chainPem, key: cert.keyPem } : {}),
  });
  session.on('error', () => {});
  return session;
}

export interface H2Result { status: number; headers: http2.IncomingHttpHeaders; body: Buffer; trailers: http2.IncomingHttpHeaders | undefined }

export function h2Request(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: Buffer | string): Promise<H2Result> {
  return new Promise((resolve, reject) => {
    const req = session.request(headers, { endStream: body === undefined });
    let status = 0;
    let resHeaders: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders | undefined;
    const chunks: Buffer[] = [];
    req.on('response', (h) => { resHeaders = h; status = Number(h[':status']); });
    req.on('trailers', (t) => { trailers = t; });
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve({ status, headers: resHeaders, body: Buffer.concat(chunks), trailers }));
    req.on('error', reject);
    if (body !== undefined) req.end(body);
  });
}

export async function getText(url: string, dispatcher: Agent, init: { method?: string; headers?: Record<string, string | string[]> | string[]; body?: string | Buffer } = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  const res = await undiciRequest(url, { dispatcher, method: (init.method ?? 'GET') as 'GET', headers: init.headers, body: init.body });
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
}

/** Sends raw bytes over mTLS (ALPN http/1.1) and returns everything the proxy answered until it closed or went quiet. */
export async function rawTls(proxy: { caPem: string; port: number }, cert: IssuedCert | null, bytes: string | Buffer, quietMs = 300): Promise<string> {
  const tls = await import('node:tls');
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port: proxy.port, ca: proxy.caPem, ...(cert ? { cert: cert.chainPem, key: cert.keyPem } : {}), ALPNProtocols: ['http/1.1'] }, () => socket.write(bytes));
    const chunks: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    const done = (): void => { clearTimeout(timer); socket.destroy(); resolve(Buffer.concat(chunks).toString('latin1')); };
    // The quiet period counts from the last bytes received; before the first byte a slow handshake on a
    // busy machine gets a generous allowance instead of being mistaken for an empty answer.
    const arm = (ms: number): void => { clearTimeout(timer); timer = setTimeout(done, ms); };
    socket.on('data', (c: Buffer) => { chunks.push(c); arm(quietMs); });
    socket.on('end', done);
    socket.on('close', done);
    socket.on('error', (err) => { if (chunks.length > 0) done(); else reject(err); });
    arm(Math.max(quietMs, 10_000));
  });
}
