import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { classifyUpstreamError, encodeGrpcMessage, isGrpcContentType, linkerdError, refusalForDecision, renderHttp1Reply, replyFor } from './respond.js';
import type { Decision } from '../policy/decision.js';

describe('respond table', () => {
  it('maps refusals to Istio/Envoy statuses and gRPC codes', () => {
    assert.deepEqual([replyFor({ kind: 'denied', reason: 'x' }).status, replyFor({ kind: 'denied', reason: 'x' }).grpcStatus, replyFor({ kind: 'denied', reason: 'x' }).body], [403, 7, 'RBAC: access denied']);
    const jwt = replyFor({ kind: 'unauthenticated', reason: 'jwt_expired', status: 401, message: 'Jwt is expired', realm: 'https://a/b' });
    assert.equal(jwt.status, 401);
    assert.equal(jwt.grpcStatus, 16);
    assert.equal(jwt.headers['www-authenticate'], 'Bearer realm="https://a/b", error="invalid_token"');
    assert.equal(replyFor({ kind: 'unauthenticated', reason: 'jwt_bad_audience', status: 403, message: 'Audiences in Jwt are not allowed', realm: '' }).grpcStatus, 7);
    assert.deepEqual([replyFor({ kind: 'upstream_refused' }).status, replyFor({ kind: 'upstream_refused' }).grpcStatus], [503, 14]);
    assert.deepEqual([replyFor({ kind: 'upstream_timeout' }).status, replyFor({ kind: 'upstream_timeout' }).grpcStatus], [504, 4]);
    assert.deepEqual([replyFor({ kind: 'upstream_reset' }).status, replyFor({ kind: 'upstream_reset' }).grpcStatus], [502, 14]);
    const identity = replyFor({ kind: 'upstream_identity', reason: 'server_identity_mismatch' });
    assert.deepEqual([identity.status, identity.grpcStatus, identity.reason, identity.body], [503, 14, 'server_identity_mismatch', 'upstream connect error']);
    assert.deepEqual([replyFor({ kind: 'rate_limited', reason: 'rate_limited' }).status, replyFor({ kind: 'rate_limited', reason: 'rate_limited' }).grpcStatus], [429, 8]);
    assert.equal(replyFor({ kind: 'headers_too_large', reason: 'too_many_headers' }).status, 431);
    assert.equal(replyFor({ kind: 'internal_error' }).status, 500);
  });

  it('renders Linkerd refusals as linkerd2-proxy: empty body, l5d-proxy-error only for a verified peer, 404 <-> grpc 5', () => {
    const conn = { peer: { spiffeId: 'spiffe://cluster.local/ns/foo/sa/a' }, sourceIp: '10.0.0.1', sourcePort: 5000, destinationIp: '10.0.0.2', destinationPort: 4143 };
    const denied = replyFor({ kind: 'denied', reason: 'unauthorized', linkerd: linkerdError('denied', conn) });
    assert.deepEqual([denied.status, denied.grpcStatus, denied.body], [403, 7, '']);
    assert.equal(denied.headers['l5d-proxy-error'], 'client 10.0.0.1:5000: server: 10.0.0.2:4143: unauthorized request on route');
    assert.equal(denied.grpcMessage, denied.headers['l5d-proxy-error']);
    const bare = replyFor({ kind: 'denied', reason: 'unauthorized', linkerd: linkerdError('denied', { ...conn, peer: null }) });
    assert.deepEqual([bare.body, bare.headers, bare.grpcMessage], ['', {}, null]);
    const notFound = replyFor({ kind: 'not_found', reason: 'route_not_found', linkerd: linkerdError('not_found', conn) });
    assert.deepEqual([notFound.status, notFound.grpcStatus], [404, 5]);
    assert.equal(replyFor({ kind: 'not_found', reason: 'route_not_found' }).grpcStatus, 5);
    const limited = replyFor({ kind: 'rate_limited', reason: 'rate_limited', linkerd: linkerdError('rate_limited', conn) });
    assert.deepEqual([limited.status, limited.grpcStatus, limited.body], [429, 8, '']);
  });

  it('renders a Cilium deny as Cilium\'s Envoy filter does: 403 text/plain "Access denied" + CRLF, gRPC 7', () => {
    const decision: Decision = {
      verdict: 'deny', reason: 'http_rule_not_matched', dialect: 'cilium', policy: { dialect: 'cilium', kind: 'CiliumNetworkPolicy', namespace: 'shop', name: 'l7' },
      rule: 'spec.ingress[0].toPorts[0].rules', authorization: null, audit: null, shadow: null, effects: null,
    };
    const conn = { peer: null, sourceIp: '10.0.0.1', sourcePort: 5000, destinationIp: '10.0.0.2' };
    const reply = replyFor(refusalForDecision(decision, conn));
    assert.deepEqual([reply.status, reply.grpcStatus, reply.body, reply.grpcMessage, reply.reason], [403, 7, 'Access denied\r\n', 'Access denied', 'http_rule_not_matched']);
    assert.match(renderHttp1Reply(reply), /^HTTP\/1\.1 403 Forbidden\r\n.*content-type: text\/plain\r\ncontent-length: 15\r\n/s);
    // Another dialect's deny keeps its own body.
    assert.equal(replyFor(refusalForDecision({ ...decision, dialect: 'istio' }, conn)).body, 'RBAC: access denied');
  });

  it('classifies network errors without ever exposing their text', () => {
    assert.equal(classifyUpstreamError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' })).kind, 'upstream_refused');
    assert.equal(classifyUpstreamError({ code: 'UND_ERR_HEADERS_TIMEOUT' }).kind, 'upstream_timeout');
    assert.equal(classifyUpstreamError({ code: 'UND_ERR_SOCKET' }).kind, 'upstream_reset');
    assert.equal(classifyUpstreamError({ code: 'X', cause: { code: 'ECONNRESET' } }).kind, 'upstream_reset');
    assert.equal(classifyUpstreamError(new Error('boom')).kind, 'upstream_error');
    for (const kind of ['upstream_refused', 'upstream_timeout', 'upstream_reset', 'upstream_error'] as const) assert.doesNotMatch(replyFor({ kind }).body, /ECONN|127\.0\.0\.1/);
  });

  it('percent-encodes grpc-message and recognises gRPC content types', () => {
    assert.equal(encodeGrpcMessage('RBAC: access denied'), 'RBAC: access denied');
    assert.equal(encodeGrpcMessage('100% \u00e9\n'), '100%25 %C3%A9%0A');
    assert.equal(isGrpcContentType('application/grpc'), true);
    assert.equal(isGrpcContentType('application/grpc+proto'), true);
    assert.equal(isGrpcContentType('application/grpc-web'), false);
    assert.equal(isGrpcContentType('application/json'), false);
  });
});

describe('raw HTTP/1.1 replies', () => {
  it('a CONNECT refusal keeps its exact bytes', () => {
    assert.equal(renderHttp1Reply(replyFor({ kind: 'method_not_allowed', reason: 'connect_not_allowed' })),
      'HTTP/1.1 405 Method Not Allowed\r\ncontent-type: text/plain\r\ncontent-length: 18\r\nconnection: close\r\n\r\nMethod Not Allowed');
  });
});
