// Owns the outbound listener's HTTP/2 sessions to its destination sidecar, as forward-h2's session source: one
// session carries at most the peer's SETTINGS_MAX_CONCURRENT_STREAMS at once, beyond that another opens (bounded); RFC 9113 §5.1.2, §6.8.

import { connect as connectH2, constants as h2constants, type ClientHttp2Session } from 'node:http2';
import { connect as connectTls, type ConnectionOptions, type TLSSocket } from 'node:tls';
import type { H2Lease, H2Sessions } from './forward-h2.js';

/** Bounds the TLS connections one outbound listener opens to its destination for h2 streams. */
const MAX_UPSTREAM_H2_SESSIONS = 8;

export interface UpstreamH2SessionsOptions {
  target: { host: string; port: number; authority: string };
  /** Fresh TLS options per connection (a rotated SVID applies to the next handshake). */
  tlsOptions: (alpn: string[]) => ConnectionOptions;
  /** A TLS handshake (with the destination's identity check) that has not finished by then fails the stream. */
  connectMs: number;
  idleMs: number;
  /** For log lines only. */
  listener: string;
  log?: { warn(obj: object, msg?: string): void };
}

interface SessionState {
  inFlight: number;
  maxStreams: number;
  usable: boolean;
  /** Settles when the handshake and the destination's identity check are done (rejects with their failure). */
  ready: Promise<void>;
}

export class UpstreamH2Sessions implements H2Sessions {
  // Until a session's SETTINGS arrive, assume what the destination last advertised (node:http2 itself
  // assumes 100): streams sent past a lower real limit would come back REFUSED_STREAM.
  private peerMaxStreams = 100;
  private readonly sessions = new Map<ClientHttp2Session, SessionState>();

  constructor(private readonly options: UpstreamH2SessionsOptions) {}

  /** A session with a free stream slot (opening one if needed), once it is connected to the verified destination. */
  async acquire(): Promise<H2Lease> {
    let chosen: ClientHttp2Session | undefined;
    let leastLoaded: ClientHttp2Session | undefined;
    let leastRatio = Infinity;
    for (const [s, state] of this.sessions) {
      if (!state.usable || s.closed || s.destroyed) continue;
      if (state.inFlight < state.maxStreams) { chosen = s; break; }
      const ratio = state.inFlight / state.maxStreams;
      if (ratio < leastRatio) { leastRatio = ratio; leastLoaded = s; }
    }
    if (!chosen) {
      const usable = [...this.sessions.values()].filter((st) => st.usable).length;
      // At the bound, the least loaded session queues the stream inside nghttp2 until a slot frees.
      chosen = usable < MAX_UPSTREAM_H2_SESSIONS || !leastLoaded ? this.open() : leastLoaded;
    }
    const state = this.sessions.get(chosen) as SessionState;
    state.inFlight++;
    let released = false;
    const release = (): void => { if (!released) { released = true; state.inFlight--; } };
    try {
      await state.ready;
    } catch (err) {
      release();
      throw err;
    }
    return { session: chosen, release };
  }

  async close(): Promise<void> {
    for (const s of this.sessions.keys()) s.close();
  }

  private open(): ClientHttp2Session {
    const { target, tlsOptions, connectMs, idleMs, listener, log } = this.options;
    let socket: TLSSocket | undefined;
    const s = connectH2(`https://${target.authority}`, {
      createConnection: () => {
        socket = connectTls({ host: target.host, port: target.port, ...tlsOptions(['h2']) });
        return socket;
      },
    });
    const state: SessionState = { inFlight: 0, maxStreams: this.peerMaxStreams, usable: true, ready: Promise.resolve() };
    state.ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => s.destroy(Object.assign(new Error('destination connect timeout'), { code: 'UND_ERR_CONNECT_TIMEOUT' })), connectMs);
      const fail = (err: unknown): void => { clearTimeout(timer); state.usable = false; reject(err); };
      s.once('error', fail);
      s.once('connect', () => { clearTimeout(timer); s.off('error', fail); resolve(); });
    });
    // Nobody may be waiting when it fails (its stream already gave up); the failure is each acquirer's to report.
    state.ready.catch(() => undefined);
    this.sessions.set(s, state);
    s.setTimeout(idleMs, () => s.close());
    s.on('remoteSettings', (settings) => {
      state.maxStreams = Math.max(1, settings.maxConcurrentStreams ?? 100);
      this.peerMaxStreams = state.maxStreams;
    });
    s.on('error', (err) => log?.warn({ listener, err: err.message }, 'outbound h2 session error'));
    s.on('close', () => {
      this.sessions.delete(s);
      // A closed session only half-closes its TLS socket; a peer that never answers the FIN must not keep it.
      setTimeout(() => socket?.destroy(), 1_000).unref();
    });
    // An unverified or failed handshake, or a peer going away, must not take the next stream.
    s.on('goaway', (code: number) => {
      state.usable = false;
      if (code !== h2constants.NGHTTP2_NO_ERROR) log?.warn({ listener, code }, 'outbound h2 session got GOAWAY');
    });
    return s;
  }
}
