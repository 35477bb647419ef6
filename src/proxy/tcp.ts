// Owns opaque TCP listeners: after the inbound mTLS/identity path, ONE policy decision per connection, then
// byte piping to a tcp:// workload; open tunnels are re-decided on policy swap. Follows linkerd.md §2/§8, istio.md §9.

import * as net from 'node:net';
import type { InboundListenerConfig } from '../config/types.js';
import { publishDecision, type DecisionRecord } from '../observe/decision-event.js';
import { defaultCaptureSettings, redactionFor } from '../observe/capture.js';
import { buildRequestContext } from '../policy/context.js';
import type { RequestContext, RequestInput } from '../policy/context-types.js';
import { issuePermit, type Decision, type Permit } from '../policy/decision.js';
import { evaluate } from '../policy/evaluate.js';
import type { PolicySnapshot } from '../policy/snapshot.js';
import { startInbound, type InboundServer } from './inbound.js';
import type { ConnectionInfo, ProxyDeps } from './types.js';
import type { Forwarder } from './upstream.js';
import { InFlightList } from './in-flight-list.js';

/** Subscribes to policy snapshot swaps (PolicyStore.onSwap); returns an unsubscribe function. */
export type PolicySwapSubscriber = (listener: (next: PolicySnapshot, previous: PolicySnapshot) => void) => () => void;

export interface TcpListenerOptions {
  /** When given, open tunnels are re-decided on every swap and those now denied are closed (Linkerd terminate). */
  onPolicySwap?: PolicySwapSubscriber;
}

export interface TcpInboundServer extends InboundServer {
  /** Connections currently piped to the workload (for drain and tests). */
  readonly openTunnels: number;
}

/** Outcome names in the decision event's `upstream.outcome` (shared vocabulary with the HTTP forwarders). */
export type TunnelOutcome = 'ok' | 'client_aborted' | 'upstream_refused' | 'upstream_timeout' | 'upstream_reset' | 'idle_timeout' | 'policy_revoked' | 'drained';

/** The outcome of judging one connection against one snapshot; `permit` null = close it. */
export interface Judgement {
  snapshot: PolicySnapshot;
  /** The facts policy saw (undefined when they could not be built). */
  context?: RequestContext;
  decision: Decision | undefined;
  permit: Permit | null;
  decidedNs: bigint;
}

/** An opaque listener has no HTTP requests: the inbound path must never hand it one. */
const noHttpForwarder: Forwarder = {
  forward: () => Promise.reject(new Error('opaque listener: no HTTP forwarding')),
  close: () => Promise.resolve(),
};

/** `tcp://host:port` -> connect options (IPv6 brackets removed). */
export function tcpUpstreamAddress(upstream: string): { host: string; port: number } {
  const url = new URL(upstream);
  if (url.protocol !== 'tcp:' || !url.port) throw new Error(`not a tcp://host:port upstream: ${upstream}`);
  return { host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port: Number(url.port) };
}

/**
 * One decision for one connection: protocol 'tcp' (no method/path/headers), peer, source IP and the listener's
 * workload port. Any exception is a close (fail closed), never a forward.
 */
export function judgeConnection(snapshot: PolicySnapshot, info: ConnectionInfo, deps: Pick<ProxyDeps, 'mode' | 'pathNormalization' | 'rejectEncodedSlashes'>): Judgement {
  const input: RequestInput = {
    protocol: 'tcp',
    method: '',
    path: '',
    host: '',
    headers: {},
    peer: info.peer,
    sourceIp: info.sourceIp,
    ...(info.remoteIp !== undefined ? { remoteIp: info.remoteIp } : {}),
    ...(info.destinationIp !== undefined ? { destinationIp: info.destinationIp } : {}),
    port: info.listener.workloadPort,
    ...(info.sni !== undefined ? { sni: info.sni } : {}),
    jwt: null,
  };
  try {
    const built = buildRequestContext(input, { pathNormalization: deps.pathNormalization, rejectEncodedSlashes: deps.rejectEncodedSlashes });
    if (!built.ok) return { snapshot, decision: undefined, permit: null, decidedNs: process.hrtime.bigint() };
    const decision = evaluate(snapshot, built.context);
    return { snapshot, context: built.context, decision, permit: issuePermit(decision, deps.mode), decidedNs: process.hrtime.bigint() };
  } catch {
    return { snapshot, decision: undefined, permit: null, decidedNs: process.hrtime.bigint() };
  }
}

function micros(fromNs: bigint, toNs: bigint): number {
  return Number((toNs - fromNs) / 1000n);
}

/** The decision record of one connection; `status` is 0 because no HTTP status exists on TCP. */
function connectionRecord(info: ConnectionInfo, j: Judgement, deps: ProxyDeps, startNs: bigint, upstream?: DecisionRecord['upstream']): DecisionRecord {
  return {
    decision: j.decision ?? null,
    mode: deps.mode,
    wouldDeny: j.permit?.wouldDeny ?? false,
    policyRevision: j.snapshot.revision,
    peer: { spiffeId: info.peer?.spiffeId ?? null, ip: info.sourceIp },
    request: { protocol: 'tcp', method: '', authority: '', path: '', listener: info.listener.name, port: info.listener.workloadPort },
    jwt: null,
    status: 0,
    grpcStatus: null,
    latencyUs: micros(startNs, j.decidedNs),
    ...(upstream ? { upstream } : {}),
    time: (deps.now ?? Date.now)(),
    ...(j.context && (deps.capture ?? defaultCaptureSettings).mode === 'replayable'
      ? { capture: { context: j.context, redaction: redactionFor(j.snapshot, deps.capture ?? defaultCaptureSettings) } }
      : {}),
  };
}

/** Through the one publish path (decision-event.ts): the log writes its line from the record. */
function publish(deps: ProxyDeps, record: DecisionRecord): void {
  try { publishDecision(deps.sink, record); } catch { /* a failing sink never fails the connection */ }
}

/** Closes a refused connection without a byte of reply: a TLS close_notify + FIN, then the socket is gone. */
function refuse(socket: net.Socket): void {
  const hardStop = setTimeout(() => socket.destroy(), 1000);
  hardStop.unref();
  socket.end(() => { clearTimeout(hardStop); socket.destroy(); });
}

interface Tunnel {
  readonly info: ConnectionInfo;
  readonly down: net.Socket;
  up: net.Socket | null;
  /** The judgement in force: the accept-time one, or the swap that revoked it. */
  judgement: Judgement;
  teardown(outcome: TunnelOutcome): void;
}

/**
 * Starts an opaque listener. TLS, permissive detection, SVID validation, maxConnections and the accept loop are
 * the HTTP listener's own (startInbound); each connection that passes them is handed here.
 */
export async function startTcpListener(listener: InboundListenerConfig, deps: ProxyDeps, opts: TcpListenerOptions = {}): Promise<TcpInboundServer> {
  const target = tcpUpstreamAddress(listener.upstream);
  const limits = deps.limits;
  const tunnels = new InFlightList<Tunnel>();
  let draining = false;
  let drainedResolve: (() => void) | null = null;

  function accept(down: net.Socket, info: ConnectionInfo): void {
    down.on('error', () => { /* reported through 'close' */ });
    if (draining) { down.destroy(); return; }
    const startNs = process.hrtime.bigint();
    // The snapshot current at accept time decides; later swaps only re-check (below).
    const first = judgeConnection(deps.policies.current(), info, deps);
    if (!first.permit) {
      publish(deps, connectionRecord(info, first, deps, startNs));
      refuse(down);
      return;
    }
    // Half-close must travel end to end (a client FIN is not the end of the workload's answer).
    down.allowHalfOpen = true;
    const parent = (down as net.Socket & { _parent?: net.Socket })._parent;
    if (parent) parent.allowHalfOpen = true;

    const upstreamStartNs = process.hrtime.bigint();
    let bytesSent = 0;
    let bytesReceived = 0;
    let done = false;
    let downClosedCleanly = false;
    let upClosedCleanly = false;
    const up = net.connect({ host: target.host, port: target.port, allowHalfOpen: true, noDelay: true });
    const connectTimer = setTimeout(() => tunnel.teardown('upstream_timeout'), limits.upstreamConnectTimeoutMs);
    connectTimer.unref();

    const tunnel: Tunnel = {
      info,
      down,
      up,
      judgement: first,
      teardown(outcome) {
        if (done) return;
        done = true;
        clearTimeout(connectTimer);
        tunnels.remove(link);
        down.destroy();
        up.destroy();
        const durationUs = micros(upstreamStartNs, process.hrtime.bigint());
        deps.metrics?.upstreamDuration?.(outcome, durationUs / 1e6);
        publish(deps, connectionRecord(info, tunnel.judgement, deps, startNs, { outcome, status: null, durationUs, bytesSent, bytesReceived }));
        if (tunnels.size === 0) drainedResolve?.();
      },
    };
    const link = tunnels.add(tunnel);

    let connected = false;
    up.on('error', () => { /* reported through 'close' */ });
    up.once('connect', () => {
      connected = true;
      clearTimeout(connectTimer);
      // pipe() gives backpressure both ways and ends the other side on a FIN (half-close propagation).
      down.on('data', (c: Buffer) => { bytesSent += c.length; });
      up.on('data', (c: Buffer) => { bytesReceived += c.length; });
      down.pipe(up);
      up.pipe(down);
      down.setTimeout(limits.idleTimeoutMs, () => tunnel.teardown('idle_timeout'));
      up.setTimeout(limits.idleTimeoutMs, () => tunnel.teardown('idle_timeout'));
    });
    const finishedCleanly = (s: net.Socket, hadError: boolean): boolean => !hadError && s.readableEnded && s.writableFinished;
    up.once('close', (hadError) => {
      if (!connected) { tunnel.teardown('upstream_refused'); return; }
      upClosedCleanly = finishedCleanly(up, hadError);
      if (!upClosedCleanly) tunnel.teardown('upstream_reset');
      else if (downClosedCleanly) tunnel.teardown('ok');
    });
    down.once('close', (hadError) => {
      downClosedCleanly = connected && finishedCleanly(down, hadError);
      if (!downClosedCleanly) tunnel.teardown('client_aborted');
      else if (upClosedCleanly) tunnel.teardown('ok');
    });
  }

  // Linkerd terminates TCP connections a policy change revokes (inbound_tcp_authz_terminate_total).
  const unsubscribe = opts.onPolicySwap?.((next) => {
    for (const tunnel of tunnels.values()) {
      const j = judgeConnection(next, tunnel.info, deps);
      if (j.permit) continue;
      tunnel.judgement = j;
      tunnel.teardown('policy_revoked');
    }
  });

  const inbound = await startInbound(listener, deps, noHttpForwarder, accept);

  return {
    name: inbound.name,
    address: () => inbound.address(),
    async drain(timeoutMs: number) {
      draining = true;
      await inbound.drain(timeoutMs);
      if (tunnels.size > 0) {
        await new Promise<void>((resolve) => {
          drainedResolve = resolve;
          setTimeout(resolve, timeoutMs).unref();
        });
      }
      for (const t of tunnels.values()) t.teardown('drained');
    },
    async close() {
      draining = true;
      unsubscribe?.();
      for (const t of tunnels.values()) t.teardown('drained');
      await inbound.close();
    },
    get inFlight() { return inbound.inFlight + tunnels.size; },
    get openTunnels() { return tunnels.size; },
  };
}
