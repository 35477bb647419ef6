// Owns THE table from a refusal or failure to what the caller sees: HTTP status, gRPC status, a fixed
// generic body and the reason code for logs. Istio/Envoy local replies (istio.md §11) and linkerd2-proxy's `rescue`.

import { STATUS_CODES } from 'node:http';
import type { BadRequestReason } from '../policy/context-types.js';
import { Code } from '../codes.js';
import type { Decision } from '../policy/decision.js';

export type Refusal =
  | { kind: 'bad_request'; reason: BadRequestReason | 'duplicate_header' | 'h2c_upgrade' | 'http10_transfer_encoding' | 'bad_request' }
  /** A transfer coding other than chunked (RFC 9112 §6.1: 501). */
  | { kind: 'not_implemented'; reason: 'unsupported_transfer_coding' }
  | { kind: 'headers_too_large'; reason: 'too_many_headers' | 'headers_too_large' }
  | { kind: 'method_not_allowed'; reason: 'connect_not_allowed' }
  | { kind: 'unauthenticated'; reason: string; status: 401 | 403; message: string; realm: string }
  | { kind: 'denied'; reason: string; linkerd?: LinkerdError; cilium?: true }
  | { kind: 'peer_rejected'; reason: string }
  | { kind: 'not_found'; reason: string; linkerd?: LinkerdError }
  | { kind: 'rate_limited'; reason: string; linkerd?: LinkerdError }
  | { kind: 'redirect'; reason: string; status: number; location: string }
  | { kind: 'upstream_refused' }
  /** The outbound destination's identity or TLS handshake was refused (`server_<why>`): never retried in plaintext. */
  | { kind: 'upstream_identity'; reason: string }
  | { kind: 'upstream_timeout' }
  /** The caller stopped sending its request body for limits.bodyTimeout (slow body). */
  | { kind: 'body_timeout' }
  | { kind: 'upstream_reset' }
  | { kind: 'upstream_error' }
  | { kind: 'draining' }
  | { kind: 'internal_error' };

/**
 * A refusal rendered the way linkerd2-proxy does (linkerd.md §8): empty body, and `l5d-proxy-error`
 * (plus `grpc-message` for gRPC) only when the client presented a verified identity.
 */
export interface LinkerdError {
  /** `client <ip:port>: server: <ip:port>: <reason>`, or null for a plaintext / unidentified client. */
  proxyError: string | null;
}

/** linkerd2-proxy's reason texts (inbound/src/http/server.rs, policy errors). */
export const linkerdReasons = {
  denied: 'unauthorized request on route',
  not_found: 'no route found for request',
  rate_limited: 'too many requests',
} as const;

/** The `l5d-proxy-error` value for a verified peer, or null for a plaintext caller (bare status). */
export function linkerdError(reason: keyof typeof linkerdReasons, conn: RefusalConnection): LinkerdError {
  if (!conn.peer) return { proxyError: null };
  const hostPort = (ip: string, port: number | undefined): string => `${ip.includes(':') ? `[${ip}]` : ip}:${port ?? 0}`;
  return { proxyError: `client ${hostPort(conn.sourceIp, conn.sourcePort)}: server: ${hostPort(conn.destinationIp ?? '', conn.destinationPort)}: ${linkerdReasons[reason]}` };
}

function linkerdReply(status: number, grpcStatus: number, error: LinkerdError, reason: string, verdict: Reply['verdict']): Reply {
  const headers: Record<string, string> = error.proxyError !== null ? { 'l5d-proxy-error': error.proxyError } : {};
  return { status, grpcStatus, body: '', headers, reason, verdict, grpcMessage: error.proxyError };
}

/** A synthetic response, transport-neutral: the downstream adapter renders it as h1, h2 or gRPC. */
export interface Reply {
  status: number;
  /** Sent instead of `status` to gRPC callers as a trailers-only 200. */
  grpcStatus: number;
  /** Fixed, generic; never an error message from a library or the network. */
  body: string;
  headers: Record<string, string>;
  reason: string;
  /** gRPC `grpc-message`: defaults to `body`; null = send none (Linkerd, unidentified client). */
  grpcMessage?: string | null;
  /** Verdict recorded in the decision event. */
  verdict: 'deny' | 'unauthenticated' | 'bad_request' | 'not_found' | 'rate_limited' | 'allow' | 'error';
}

const denyBody = 'RBAC: access denied';

/** cilium/proxy l7policy.cc: the default `denied_403_body`, answered as text/plain (cni-dialects.md §0). */
const ciliumDenyBody = 'Access denied\r\n';

export function replyFor(refusal: Refusal): Reply {
  switch (refusal.kind) {
    case 'bad_request':
      return { status: 400, grpcStatus: 13, body: 'Bad Request', headers: {}, reason: refusal.reason, verdict: 'bad_request' };
    case 'headers_too_large':
      return { status: 431, grpcStatus: 13, body: 'Request Header Fields Too Large', headers: {}, reason: refusal.reason, verdict: 'bad_request' };
    case 'not_implemented':
      return { status: 501, grpcStatus: 13, body: 'Not Implemented', headers: {}, reason: refusal.reason, verdict: 'bad_request' };
    case 'method_not_allowed':
      return { status: 405, grpcStatus: 13, body: 'Method Not Allowed', headers: {}, reason: refusal.reason, verdict: 'bad_request' };
    case 'unauthenticated':
      return {
        status: refusal.status,
        grpcStatus: refusal.status === 401 ? 16 : 7,
        body: refusal.message,
        headers: refusal.status === 401 ? { 'www-authenticate': `Bearer realm="${refusal.realm}", error="invalid_token"` } : {},
        reason: refusal.reason,
        verdict: 'unauthenticated',
      };
    case 'denied':
      if (refusal.linkerd) return linkerdReply(403, 7, refusal.linkerd, refusal.reason, 'deny');
      if (refusal.cilium) return { status: 403, grpcStatus: 7, body: ciliumDenyBody, headers: {}, reason: refusal.reason, verdict: 'deny', grpcMessage: 'Access denied' };
      return { status: 403, grpcStatus: 7, body: denyBody, headers: {}, reason: refusal.reason, verdict: 'deny' };
    case 'peer_rejected':
      return { status: 403, grpcStatus: 7, body: denyBody, headers: {}, reason: refusal.reason, verdict: 'deny' };
    case 'not_found':
      // Only Linkerd produces not_found; gRPC NOT_FOUND is 5 (linkerd.md §8: 404 <-> 5).
      if (refusal.linkerd) return linkerdReply(404, 5, refusal.linkerd, refusal.reason, 'not_found');
      return { status: 404, grpcStatus: 5, body: 'Not Found', headers: {}, reason: refusal.reason, verdict: 'not_found' };
    case 'rate_limited':
      if (refusal.linkerd) return linkerdReply(429, 8, refusal.linkerd, refusal.reason, 'rate_limited');
      return { status: 429, grpcStatus: 8, body: 'Too Many Requests', headers: {}, reason: refusal.reason, verdict: 'rate_limited' };
    case 'redirect':
      return { status: refusal.status, grpcStatus: 2, body: '', headers: { location: refusal.location }, reason: refusal.reason, verdict: 'allow' };
    case 'upstream_refused':
      return { status: 503, grpcStatus: 14, body: 'upstream connect error', headers: {}, reason: 'upstream_refused', verdict: 'error' };
    case 'upstream_identity':
      return { status: 503, grpcStatus: 14, body: 'upstream connect error', headers: {}, reason: refusal.reason, verdict: 'error' };
    case 'upstream_timeout':
      return { status: 504, grpcStatus: 4, body: 'upstream request timeout', headers: {}, reason: 'upstream_timeout', verdict: 'error' };
    case 'body_timeout':
      return { status: 408, grpcStatus: 4, body: 'Request Timeout', headers: { connection: 'close' }, reason: 'body_timeout', verdict: 'error' };
    case 'upstream_reset':
      return { status: 502, grpcStatus: 14, body: 'upstream connection reset', headers: {}, reason: 'upstream_reset', verdict: 'error' };
    case 'upstream_error':
      return { status: 502, grpcStatus: 14, body: 'Bad Gateway', headers: {}, reason: 'upstream_error', verdict: 'error' };
    case 'draining':
      return { status: 503, grpcStatus: 14, body: 'Service Unavailable', headers: { connection: 'close' }, reason: 'draining', verdict: 'error' };
    case 'internal_error':
      return { status: 500, grpcStatus: 13, body: 'Internal Server Error', headers: {}, reason: 'internal_error', verdict: 'deny' };
  }
}

/** The connection facts a Linkerd-style refusal names in `l5d-proxy-error`. */
export interface RefusalConnection {
  peer: unknown;
  sourceIp: string;
  sourcePort: number;
  destinationIp: string | undefined;
  destinationPort?: number | undefined;
}

/**
 * The refusal for an engine decision that carries no permit: the core says what it concluded (verdict and
 * reason), this table says what the caller sees. A Linkerd decision is rendered as linkerd2-proxy does (linkerd.md §8),
 * a Cilium deny as Cilium's Envoy filter does (403 `Access denied`, for L3/L4 denies too: a sidecar cannot drop).
 */
export function refusalForDecision(decision: Decision, conn: RefusalConnection): Refusal {
  const linkerd = decision.dialect === 'linkerd';
  switch (decision.verdict) {
    case 'not_found': return { kind: 'not_found', reason: decision.reason, ...(linkerd ? { linkerd: linkerdError('not_found', conn) } : {}) };
    case 'rate_limited': return { kind: 'rate_limited', reason: decision.reason, ...(linkerd ? { linkerd: linkerdError('rate_limited', conn) } : {}) };
    case 'bad_request': return { kind: 'bad_request', reason: 'bad_request' };
    default:
      if (decision.dialect === 'cilium') return { kind: 'denied', reason: decision.reason, cilium: true };
      return { kind: 'denied', reason: decision.reason, ...(linkerd ? { linkerd: linkerdError('denied', conn) } : {}) };
  }
}

/**
 * The status line a caller sees, as `sendReply` renders it: gRPC callers always get HTTP 200 with the
 * reply's grpc-status in a trailers-only response; a forwarded request (no reply) is 200 / gRPC 0.
 */
export function statusOnWire(reply: Reply | null, grpc: boolean): { status: number; grpcStatus: number | null } {
  if (grpc) return { status: 200, grpcStatus: reply === null ? 0 : reply.grpcStatus };
  return { status: reply === null ? 200 : reply.status, grpcStatus: null };
}

/** Classifies an upstream failure (undici or node:http2 error) without ever surfacing its message. */
export function classifyUpstreamError(err: unknown): Refusal {
  const code = typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : '';
  const cause = typeof err === 'object' && err !== null && 'cause' in err ? (err as { cause: unknown }).cause : undefined;
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EHOSTUNREACH' || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'EADDRNOTAVAIL') {
    return { kind: 'upstream_refused' };
  }
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'ETIMEDOUT' || code === Code.UPSTREAM_TIMEOUT) {
    return { kind: 'upstream_timeout' };
  }
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET' || code === 'EPIPE' || code === 'ERR_HTTP2_STREAM_ERROR' || code === 'ERR_HTTP2_SESSION_ERROR' || code === 'ERR_HTTP2_GOAWAY_SESSION' || code === 'UND_ERR_CLOSED') {
    return { kind: 'upstream_reset' };
  }
  if (cause !== undefined && cause !== err) {
    const inner = classifyUpstreamError(cause);
    if (inner.kind !== 'upstream_error') return inner;
  }
  return { kind: 'upstream_error' };
}

/** gRPC `grpc-message` is percent-encoded (grpc PROTOCOL-HTTP2). */
export function encodeGrpcMessage(message: string): string {
  return message.replace(/[^\x20-\x24\x26-\x7e]/g, (ch) => encodeURIComponent(ch));
}

export function isGrpcContentType(contentType: string | undefined): boolean {
  return contentType !== undefined && /^application\/grpc(\+|;|$)/i.test(contentType.trim());
}

/** A reply as HTTP/1.1 bytes, for sockets Node hands over without a response object (CONNECT); the connection closes. */
export function renderHttp1Reply(reply: Reply): string {
  const body = Buffer.from(reply.body, 'utf8');
  let head = `HTTP/1.1 ${reply.status} ${STATUS_CODES[reply.status] ?? 'Unknown'}\r\n`;
  for (const [name, value] of Object.entries(reply.headers)) head += `${name}: ${value}\r\n`;
  if (body.length > 0) head += 'content-type: text/plain\r\n';
  return `${head}content-length: ${body.length}\r\nconnection: close\r\n\r\n${reply.body}`;
}
