// The fail-closed branch of the lifecycle: no well-formed input reaches it, so it is driven here with an
// in-memory exchange (the one check uses) and a snapshot source that throws. The forwarder must never be called.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { DecisionEventV1 } from '../observe/types.js';
import { memoryExchange } from './memory-exchange.js';
import { handleRequest } from './stages.js';
import type { ProxyDeps } from './types.js';
import type { Forwarder } from './upstream.js';

function deps(events: DecisionEventV1[], current: () => never): ProxyDeps {
  return {
    mode: 'audit',
    limits: { maxHeaderBytes: 65536, maxHeaderCount: 100, headersTimeoutMs: 1, requestTimeoutMs: 1, bodyTimeoutMs: 1, idleTimeoutMs: 1, tlsHandshakeTimeoutMs: 1, h2MaxConcurrentStreams: 100, h2MaxResetsPerSecond: 1, maxConnections: 1, upstreamConnectTimeoutMs: 1, upstreamTimeoutMs: 1, drainTimeoutMs: 1, maxJwtBytes: 1 },
    pathNormalization: 'MERGE_SLASHES',
    rejectEncodedSlashes: false,
    policies: { current },
    credentials: { serverOptions: () => ({}), onChange: () => () => {}, ownSpiffeId: () => 'spiffe://td/ns/a/sa/b' },
    verifyPeer: () => ({ ok: false, reason: 'no_certificate', detail: '' }),
    jwtFor: () => { throw new Error('unused'); },
    sink: { publish: (e) => events.push(e) },
  };
}

describe('handleRequest fails closed', () => {
  it('an exception while deciding is a 500 with a generic body, never forwarded, even in audit mode', async () => {
    const events: DecisionEventV1[] = [];
    let forwarded = 0;
    const forwarder: Forwarder = { forward: async () => { forwarded++; return { ok: true, status: 200, outcome: 'ok' }; }, close: async () => {} };
    const { ex, response: sent } = memoryExchange({
      conn: { listener: { name: 'l', listen: { host: '127.0.0.1', port: 0 }, upstream: 'http://127.0.0.1:1', mode: 'strict', workloadPort: 8080 }, tls: true, peer: null, peerCertHash: null, sourceIp: '127.0.0.1', sourcePort: 1, destinationIp: undefined, sni: undefined },
      httpVersion: '1.1', method: 'GET', target: '/x', rawHeaders: ['Host', 'a'],
    });
    await handleRequest(ex, deps(events, () => { throw new Error('store exploded at /secret/path'); }), forwarder);
    assert.equal(forwarded, 0);
    assert.equal(sent.status, 500);
    assert.equal(sent.body, 'Internal Server Error');
    assert.equal(events.length, 1);
    assert.equal(events[0]?.reason, 'internal_error');
    assert.equal(events[0]?.would_deny, false);
  });

  it('with decisionEvents: false the reply is the same and no event is built or published', async () => {
    const events: DecisionEventV1[] = [];
    const { ex, response: sent } = memoryExchange({
      conn: { listener: { name: 'l', listen: { host: '127.0.0.1', port: 0 }, upstream: 'http://127.0.0.1:1', mode: 'strict', workloadPort: 8080 }, tls: true, peer: null, peerCertHash: null, sourceIp: '127.0.0.1', sourcePort: 1, destinationIp: undefined, sni: undefined },
      httpVersion: '1.1', method: 'GET', target: '/x', rawHeaders: ['Host', 'a'],
    });
    const state = await handleRequest(ex, { ...deps(events, () => { throw new Error('store exploded'); }), decisionEvents: false }, { forward: async () => { throw new Error('never forwarded'); }, close: async () => {} });
    assert.equal(sent.status, 500);
    assert.equal(sent.body, 'Internal Server Error');
    assert.equal(state.reply?.reason, 'internal_error');
    assert.equal(events.length, 0);
  });
});
