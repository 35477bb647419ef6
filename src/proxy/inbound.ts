// Owns the inbound listeners: TLS (1.2+, ALPN h2 + http/1.1), permissive plaintext detection, limits and
// timeouts, per-connection SPIFFE identity, drain. Follows security.md PC-18..PC-20, PC-24/25 and Istio PERMISSIVE.

import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { Duplex } from 'node:stream';
import type { InboundListenerConfig } from '../config/types.js';
import { h1Exchange, h2Exchange, type Exchange } from './exchange.js';
import { handleRequest } from './stages.js';
import { connectionChecks, connectionsCheckingIntervalMs } from './h1-connection-checks.js';
import { stallSweep } from './h1-stall-sweep.js';
import { identifyTlsPeer } from './peer-identity.js';
import { rapidResetGuard } from './rapid-reset.js';
import { createH1Forwarder } from './forward-h1.js';
import { createH2Forwarder } from './forward-h2.js';
import type { Forwarder } from './upstream.js';
import type { ConnectionInfo, ProxyDeps } from './types.js';
import { handleUpgrade } from './websocket.js';
import { InFlightList } from './in-flight-list.js';
import { renderHttp1Reply, replyFor } from './respond.js';

export interface InboundServer {
  readonly name: string;
  address(): net.AddressInfo;
  /** Stop accepting, GOAWAY h2 sessions, `Connection: close` on h1, wait for in-flight requests. */
  drain(timeoutMs: number): Promise<void>;
  close(): Promise<void>;
  /** Requests currently being handled (for drain and tests). */
  readonly inFlight: number;
}

/** Opaque (protocol tcp) listeners: a connection that passed TLS and identity is handed over whole (src/proxy/tcp.ts). */
export type OpaqueConnectionHandler = (socket: net.Socket, info: ConnectionInfo) => void;

const TLS_HANDSHAKE_RECORD = 0x16;
const H2_PREFACE_START = Buffer.from('PRI ');

export function createForwarder(listener: InboundListenerConfig, deps: ProxyDeps): Forwarder {
  const url = new URL(listener.upstream);
  const origin = `http://${url.host}`;
  if (url.protocol === 'h2c:') return createH2Forwarder({ origin, connectTimeoutMs: deps.limits.upstreamConnectTimeoutMs });
  return createH1Forwarder({ origin, connectTimeoutMs: deps.limits.upstreamConnectTimeoutMs, bodyTimeoutMs: deps.limits.requestTimeoutMs });
}

/** A Duplex over `socket` that starts with whatever was unshifted back into it. */
function replaying(socket: net.Socket): Duplex {
  const duplex = new Duplex({
    read() { socket.resume(); },
    write(chunk: Buffer, _enc, cb) { socket.write(chunk, cb); },
    final(cb) { socket.end(); cb(); },
    destroy(err, cb) { socket.destroy(err ?? undefined); cb(err); },
  });
  socket.on('data', (c: Buffer) => { if (!duplex.push(c)) socket.pause(); });
  socket.on('end', () => duplex.push(null));
  socket.on('close', () => duplex.destroy());
  return duplex;
}

/** Outstanding HTTP/1.1 requests one connection may have (HTTP/1.1 answers them in order, one at a time). */
const MAX_PIPELINED_REQUESTS = 16;

export async function startInbound(listener: InboundListenerConfig, deps: ProxyDeps, forwarder: Forwarder = createForwarder(listener, deps), onOpaqueConnection?: OpaqueConnectionHandler): Promise<InboundServer> {
  const limits = deps.limits;
  const strict = listener.mode === 'strict';
  const infoBySocket = new WeakMap<net.Socket, ConnectionInfo>();
  const sockets = new InFlightList<net.Socket>();
  const sessions = new InFlightList<http2.ServerHttp2Session>();
  let pendingH2Info: ConnectionInfo | null = null;
  let pendingH2Socket: Duplex | null = null;
  let inFlight = 0;
  const activeH1 = new InFlightList<Exchange>();
  let draining = false;
  let idleResolve: (() => void) | null = null;
  const settled = (): void => {
    inFlight--;
    if (inFlight === 0 && idleResolve) idleResolve();
  };
  /** Counts a request or upgrade in flight until it settles (handleRequest never rejects; defensive). */
  const track = (run: Promise<unknown>): void => {
    inFlight++;
    run.then(settled, settled);
  };
  /** track() for an HTTP/1.1 exchange, which drain also asks to close its connection. */
  const trackH1 = (ex: Exchange): void => {
    inFlight++;
    const link = activeH1.add(ex);
    const done = (): void => { activeH1.remove(link); settled(); };
    handleRequest(ex, deps, forwarder).then(done, done);
  };

  /**
   * A connection's record, every field written in one order from one literal: every request reads it, and records
   * that share one map keep those reads monomorphic. (A spread of a base object gave each connection a map of its own.)
   */
  function connectionInfo(raw: net.Socket, tls: boolean, peer: ConnectionInfo['peer'], peerCertHash: string | null, sni: string | undefined): ConnectionInfo {
    return {
      listener,
      tls,
      peer,
      peerCertHash,
      sourceIp: (raw.remoteAddress ?? '').replace(/^::ffff:/, ''),
      sourcePort: raw.remotePort ?? 0,
      destinationIp: raw.localAddress?.replace(/^::ffff:/, ''),
      destinationPort: raw.localPort,
      sni,
    };
  }

  // === HTTP/1.1 ===
  const pipelined = new WeakMap<net.Socket, number>();
  const h1 = http.createServer({
    maxHeaderSize: limits.maxHeaderBytes,
    requestTimeout: limits.requestTimeoutMs,
    headersTimeout: limits.headersTimeoutMs,
    keepAliveTimeout: Math.min(limits.idleTimeoutMs, 60_000),
    connectionsCheckingInterval: connectionsCheckingIntervalMs(limits),
    requireHostHeader: true,
  });
  // Node truncates silently above maxHeadersCount; count ourselves and answer 431 instead (PC-11).
  h1.maxHeadersCount = 0;
  // This server never listens itself (sockets are handed to it after TLS). Node's connection tracking
  // behind headersTimeout/requestTimeout runs only while it has connections (h1-connection-checks.ts).
  const h1Checks = connectionChecks(h1);
  // limits.idleTimeout while a request is in flight (between requests, keepAliveTimeout above); not `h1.timeout`.
  const h1Sockets = new InFlightList<net.Socket>();
  const stalls = stallSweep(limits.idleTimeoutMs, () => h1Sockets.values(), (socket) => (pipelined.get(socket) ?? 0) > 0, (socket) => socket.destroy());
  // Shared by every response ('close' fires once): no closure per request.
  function onH1ResponseClose(this: http.ServerResponse): void {
    const socket = this.req.socket;
    pipelined.set(socket, (pipelined.get(socket) ?? 1) - 1);
  }
  const onH1Request = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const info = infoBySocket.get(req.socket);
    if (!info) { res.destroy(); return; }
    // Pipeline flood: llhttp emits every request of a read at once, and each would start upstream work.
    // Beyond a few outstanding requests on one connection, the caller is not a client but a flood: cut it.
    const outstanding = (pipelined.get(req.socket) ?? 0) + 1;
    if (outstanding > MAX_PIPELINED_REQUESTS) { req.socket.destroy(); return; }
    pipelined.set(req.socket, outstanding);
    stalls.wake();
    res.on('close', onH1ResponseClose);
    const ex = h1Exchange(info, req, res);
    if (draining) ex.closeAfterResponse();
    trackH1(ex);
  };
  h1.on('request', onH1Request);
  // PC-15: the decision comes first; the exchange sends 100 only once a Permit exists.
  h1.on('checkContinue', onH1Request);
  h1.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    const info = infoBySocket.get(req.socket);
    if (!info) { socket.destroy(); return; }
    track(handleUpgrade(info, req, socket, head, deps, listener));
  });
  // Node's default answer to a parse error destroys the socket with the rest of the oversized head still
  // unread, so the kernel resets the connection and the caller never sees the status. Write it, half-close,
  // and drain (bounded) until the caller closes: the status always arrives.
  h1.on('clientError', (err: NodeJS.ErrnoException, socket: net.Socket) => {
    const message = (socket as net.Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (!socket.writable || message?.headersSent) { socket.destroy(); return; }
    const [status, text] = err.code === 'HPE_HEADER_OVERFLOW' ? [431, 'Request Header Fields Too Large']
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'Request Timeout'] : [400, 'Bad Request'];
    closeAfterFlush(socket, `HTTP/1.1 ${status} ${text}\r\ncontent-type: text/plain\r\ncontent-length: ${text.length}\r\nconnection: close\r\n\r\n${text}`);
  });
  // Node hands CONNECT over with the raw socket, past the request stages; the answer is still respond.ts's.
  h1.on('connect', (_req: http.IncomingMessage, socket: net.Socket) => {
    socket.end(renderHttp1Reply(replyFor({ kind: 'method_not_allowed', reason: 'connect_not_allowed' })));
  });

  /**
   * Writes a final answer, half-closes, and discards what the caller still sends (at most 1 MiB, 2 s), so
   * the close is a FIN after the answer and never a reset that overtakes it.
   */
  function closeAfterFlush(socket: net.Socket, answer: string): void {
    let drained = 0;
    const stop = (): void => { clearTimeout(timer); socket.destroy(); };
    const timer = setTimeout(stop, 2000);
    timer.unref();
    socket.removeAllListeners('data');
    socket.on('data', (chunk: Buffer) => { drained += chunk.length; if (drained > 1 << 20) stop(); });
    socket.on('end', stop);
    socket.on('close', () => clearTimeout(timer));
    socket.on('error', stop);
    socket.resume();
    socket.end(answer);
  }

  // === HTTP/2 ===
  const h2 = http2.createServer({
    settings: {
      maxConcurrentStreams: limits.h2MaxConcurrentStreams,
      initialWindowSize: 65_535,
      maxHeaderListSize: limits.maxHeaderBytes,
      enablePush: false,
    },
    // nghttp2 resets above this with ENHANCE_YOUR_CALM; leave room so our own count answers 431 first.
    maxHeaderListPairs: limits.maxHeaderCount * 2 + 16,
    maxSessionMemory: 32,
  });
  h2.on('session', (session: http2.ServerHttp2Session) => {
    const info = pendingH2Info;
    const transport = pendingH2Socket;
    pendingH2Info = null;
    pendingH2Socket = null;
    if (!info) { session.destroy(); return; }
    const sessionLink = sessions.add(session);
    session.on('close', () => sessions.remove(sessionLink));
    session.on('error', () => { /* the socket closes; nothing to forward */ });
    try { session.setLocalWindowSize(1 << 20); } catch { /* before connect on some versions; default window then */ }
    session.setTimeout(limits.idleTimeoutMs, () => session.close());
    const guardStream = rapidResetGuard(session, limits.h2MaxResetsPerSecond, transport);
    session.on('stream', (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, flags: number, rawHeaders: string[]) => {
      guardStream(stream);
      deps.metrics?.h2StreamOpened?.();
      stream.once('close', () => deps.metrics?.h2StreamClosed?.());
      if (draining) { stream.close(http2.constants.NGHTTP2_REFUSED_STREAM); return; }
      const endStream = (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0;
      const ex = h2Exchange(info, stream, headers as Record<string, string | string[] | undefined>, rawHeaders, endStream);
      track(handleRequest(ex, deps, forwarder));
    });
  });

  function dispatch(socket: net.Socket, info: ConnectionInfo, protocol: 'h2' | 'h1'): void {
    infoBySocket.set(socket, info);
    deps.metrics?.connectionAccepted?.(listener.name);
    if (onOpaqueConnection) { onOpaqueConnection(socket, info); return; }
    if (protocol === 'h2') {
      pendingH2Info = info;
      pendingH2Socket = socket;
      h2.emit('connection', socket);
      pendingH2Info = null;
      pendingH2Socket = null;
    } else {
      h1Checks.adopt(socket);
      const link = h1Sockets.add(socket);
      socket.once('close', () => h1Sockets.remove(link));
      h1.emit('connection', socket);
    }
  }

  // === TLS ===
  const tlsServer = tls.createServer({
    ...deps.credentials.serverOptions(),
    requestCert: true,
    rejectUnauthorized: strict,
    ALPNProtocols: ['h2', 'http/1.1'],
    minVersion: 'TLSv1.2',
    handshakeTimeout: limits.tlsHandshakeTimeoutMs,
  });
  tlsServer.on('tlsClientError', (_err, socket) => {
    deps.metrics?.handshakeRejected?.(listener.name, 'tls_error');
    socket.destroy();
  });
  tlsServer.on('secureConnection', (socket: tls.TLSSocket) => {
    const identity = identifyTlsPeer(socket, strict, deps.verifyPeer);
    if (!identity.ok) { deps.metrics?.handshakeRejected?.(listener.name, identity.reason); socket.destroy(); return; }
    const sni = (socket as tls.TLSSocket & { servername?: string | false }).servername;
    const info = connectionInfo(socket, true, identity.peer, identity.peerCertHash, typeof sni === 'string' ? sni : undefined);
    dispatch(socket, info, socket.alpnProtocol === 'h2' ? 'h2' : 'h1');
  });

  // Rotation: new handshakes get the new SVID and bundle; established connections are untouched.
  const unbindCredentials = deps.credentials.onChange(() => tlsServer.setSecureContext(deps.credentials.serverOptions()));

  function acceptTls(socket: net.Socket): void {
    tlsServer.emit('connection', socket);
  }

  // === TCP ===
  const netServer = net.createServer({ noDelay: true });
  netServer.maxConnections = limits.maxConnections;
  netServer.on('drop', () => deps.metrics?.connectionDropped?.(listener.name));
  netServer.on('connection', (socket: net.Socket) => {
    const socketLink = sockets.add(socket);
    deps.metrics?.connectionOpened?.(listener.name, true);
    socket.on('close', () => { sockets.remove(socketLink); deps.metrics?.connectionClosed?.(listener.name); });
    socket.on('error', () => { /* peer went away */ });
    if (draining) { socket.destroy(); return; }
    if (strict) { acceptTls(socket); return; }
    // Permissive: peek the first bytes to tell TLS from plaintext (Istio PERMISSIVE on the same port).
    const timer = setTimeout(() => socket.destroy(), limits.tlsHandshakeTimeoutMs);
    socket.once('data', (chunk: Buffer) => {
      clearTimeout(timer);
      socket.pause();
      socket.unshift(chunk);
      if (chunk[0] === TLS_HANDSHAKE_RECORD) { acceptTls(socket); return; }
      const info = connectionInfo(socket, false, null, null, undefined);
      // Opaque: the peeked bytes stay unshifted and the socket paused until the connection is decided.
      if (onOpaqueConnection) { dispatch(socket, info, 'h1'); return; }
      if (chunk.subarray(0, 4).equals(H2_PREFACE_START)) {
        // nghttp2 reads the native handle directly and would miss the peeked bytes: give it a JS stream.
        deps.metrics?.connectionAccepted?.(listener.name);
        pendingH2Info = info;
        pendingH2Socket = socket;
        h2.emit('connection', replaying(socket));
        pendingH2Info = null;
        pendingH2Socket = null;
        return;
      }
      dispatch(socket, info, 'h1');
      socket.resume();
    });
  });

  await new Promise<void>((resolve, reject) => {
    netServer.once('error', reject);
    netServer.listen(listener.listen.port, listener.listen.host, () => { netServer.off('error', reject); resolve(); });
  });

  async function drain(timeoutMs: number): Promise<void> {
    draining = true;
    netServer.close();
    for (const s of sessions.values()) s.close();
    h1.closeIdleConnections();
    // In-flight HTTP/1.1 requests answer with `Connection: close` if their response has not started yet.
    for (const ex of activeH1.values()) ex.closeAfterResponse();
    if (inFlight > 0) {
      await new Promise<void>((resolve) => {
        idleResolve = resolve;
        setTimeout(resolve, timeoutMs).unref();
      });
    }
  }

  return {
    name: listener.name,
    address: () => netServer.address() as net.AddressInfo,
    drain,
    async close() {
      unbindCredentials();
      stalls.stop();
      draining = true;
      netServer.close();
      for (const s of sessions.values()) s.destroy();
      for (const s of sockets.values()) s.destroy();
      h1.closeAllConnections();
      // Stops the connection-checking interval; the "not running" error is expected (it never listened).
      h1.close(() => {});
      await forwarder.close();
    },
    get inFlight() { return inFlight; },
  };
}
