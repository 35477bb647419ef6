// Owns the contract between the request lifecycle and the forwarders: a validated upstream request that
// can only be forwarded with a Permit (linkerd2-proxy's Permitted<T>), and the outcome reported back.

import type { Permit } from '../policy/decision.js';
import type { Exchange } from './exchange.js';
import type { Refusal } from './respond.js';

/** Built from validated fields only (PC-16): method, normalized path, canonical authority, clean headers. */
export interface UpstreamRequest {
  method: string;
  /** Normalized path plus `?query` when present. */
  path: string;
  authority: string;
  /** Made for this request alone: the forwarder adds its framing fields (host, pseudo-headers) to it in place. */
  headers: Record<string, string | string[]>;
  grpc: boolean;
  /**
   * Milliseconds to wait for the response headers from the request being written (limits.upstreamTimeout, or the
   * outbound route's), restarted by each request body chunk forwarded: a long upload that keeps going is not cut.
   */
  headersTimeoutMs: number;
  /**
   * The caller's gRPC deadline (`grpc-timeout`) in milliseconds from the forward, never restarted: a gRPC deadline
   * covers the whole call (PROTOCOL-HTTP2). Undefined when the request carries none.
   */
  deadlineMs: number | undefined;
  /** Longest wait for the next downstream body byte while the body is forwarded (limits.bodyTimeout); 0: no limit. */
  bodyTimeoutMs: number;
}

/**
 * Turns a failure to reach the upstream (connect, TLS, reset) into what the caller sees; the default is
 * respond.ts's classifyUpstreamError. The outbound listener's also names a refused destination identity.
 */
export type UpstreamErrorClassifier = (err: unknown) => Refusal;

export type ForwardOutcome =
  /** `grpcStatus`: the workload's grpc-status (trailers, or headers of a trailers-only answer) for gRPC calls. */
  | { ok: true; status: number; outcome: 'ok' | 'client_aborted' | 'reset_after_headers'; grpcStatus?: number }
  /** Nothing was sent downstream yet: the caller answers through respond.ts. */
  | { ok: false; refusal: Refusal };

export interface Forwarder {
  forward(permit: Permit, request: UpstreamRequest, exchange: Exchange<unknown>): Promise<ForwardOutcome>;
  close(): Promise<void>;
}

const grpcTimeoutUnitMs: Readonly<Record<string, number>> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };

/**
 * A caller's gRPC deadline from its `grpc-timeout` (PROTOCOL-HTTP2: up to 8 digits and a unit) in whole
 * milliseconds, at least 1 (UpstreamRequest.deadlineMs); undefined when absent or malformed.
 */
export function grpcDeadlineMs(value: string | string[] | undefined): number | undefined {
  if (typeof value !== 'string') return undefined;
  const m = /^(\d{1,8})([HMSmun])$/.exec(value.trim());
  if (!m) return undefined;
  return Math.max(1, Math.ceil(Number(m[1]) * (grpcTimeoutUnitMs[m[2] as string] as number)));
}
