// Two real sidecars in a row, as in a mesh: app (h2c) -> Portcullis outbound -> mTLS h2 -> Portcullis
// inbound -> h2c workload. Many concurrent streams must all complete, with more streams than one
// upstream session may carry (the inbound advertises SETTINGS_MAX_CONCURRENT_STREAMS 100).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import { TEST_IDS } from '../helpers/pki.js';
import {
  closedPort,
  decisionLogLines,
  parseDecisionLines,
  startApp,
  startH2Upstream,
  startProxy,
  type AppUnderTest,
  type ProxyUnderTest,
  type RecordingUpstream,
} from './harness.js';
import type { DecisionEventV1 } from '../../src/observe/types.js';

// Both sidecars run with the shared test PKI's server SVID (spiffe://cluster.local/ns/foo/sa/httpbin),
// so that is the caller identity the inbound sees.
const MESH_POLICY = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-mesh, namespace: foo}
spec:
  action: ALLOW
  rules:
  - from: [{source: {principals: ["cluster.local/ns/foo/sa/httpbin"]}}]
    to: [{operation: {methods: ["GET", "POST"], paths: ["/mesh/*"]}}]
`;

const REQUESTS = 500;
const CONCURRENCY = 200;

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

interface Mesh { upstream: RecordingUpstream; inbound: ProxyUnderTest; outbound: AppUnderTest; outboundPort: number }

async function startMesh(): Promise<Mesh> {
  const upstream = await startH2Upstream((stream, headers, body) => {
    stream.respond({ ':status': 200, 'content-type': 'text/plain' });
    stream.end(`${String(headers[':method'])} ${String(headers[':path'])} ${body.toString('utf8')}`);
  });
  cleanups.push(() => upstream.close());
  const inbound = await startProxy({ policy: MESH_POLICY, upstream: upstream.url });
  cleanups.push(() => inbound.stop());
  // The app config names the outbound port up front (there is no bound-port lookup for outbound listeners).
  const outboundPort = await closedPort();
  const unusedUpstream = await closedPort();
  const outbound = await startApp({
    dirPrefix: 'portcullis-mesh-out-',
    policy: MESH_POLICY,
    listener: `name=unused,listen=127.0.0.1:0,upstream=http://127.0.0.1:${unusedUpstream}`,
    workload: ['--service-account', 'httpbin'],
    flags: ['--outbound', `name=to-inbound,listen=127.0.0.1:${outboundPort},target=https://127.0.0.1:${inbound.port},expectIdentity=${TEST_IDS.httpbin},serverName=localhost`],
  });
  cleanups.push(() => outbound.stop());
  return { upstream, inbound, outbound, outboundPort };
}

interface Reply { status: number; body: string; rstCode: number | undefined; error: string | undefined }

/** One request on `session`; a stream that neither ends nor fails within 5 s is reported, not waited on. */
function h2Call(session: http2.ClientHttp2Session, method: string, path: string, body?: string): Promise<Reply> {
  return new Promise((resolve) => {
    const req = session.request({ ':method': method, ':path': path }, { endStream: body === undefined });
    let status = 0;
    let text = '';
    let settled = false;
    const done = (error?: string): void => {
      if (settled) return;
      settled = true;
      resolve({ status, body: text, rstCode: req.rstCode, error });
    };
    req.setTimeout(5_000, () => { req.close(http2.constants.NGHTTP2_CANCEL); done('timeout'); });
    req.setEncoding('utf8');
    req.on('response', (h) => { status = Number(h[':status']); });
    req.on('data', (chunk: string) => { text += chunk; });
    req.on('end', () => done());
    req.on('error', (err: Error) => done(err.message));
    req.on('close', () => done(req.readableEnded ? undefined : `closed before end, rst ${String(req.rstCode)}`));
    if (body !== undefined) req.end(body);
  });
}

async function waitForEvents(logFile: string, predicate: (e: DecisionEventV1) => boolean, min: number): Promise<DecisionEventV1[]> {
  let matching: DecisionEventV1[] = [];
  for (let i = 0; i < 250 && matching.length < min; i++) {
    matching = parseDecisionLines(decisionLogLines(logFile)).filter(predicate);
    if (matching.length < min) await new Promise((r) => setTimeout(r, 20));
  }
  return matching;
}

test(`${REQUESTS} HTTP/2 requests, ${CONCURRENCY} concurrent streams on one app session, all pass both sidecars`, async () => {
  const mesh = await startMesh();
  const session = http2.connect(`http://127.0.0.1:${mesh.outboundPort}`);
  session.on('error', () => { /* each stream reports its own failure */ });
  cleanups.push(() => new Promise<void>((r) => { session.close(() => r()); }));

  const replies = new Array<Reply | undefined>(REQUESTS);
  let next = 0;
  // Bounded: each worker takes request indexes until all REQUESTS are taken.
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    for (let i = next++; i < REQUESTS; i = next++) {
      replies[i] = i % 5 === 0
        ? await h2Call(session, 'POST', `/mesh/${i}`, `payload-${i}`)
        : await h2Call(session, 'GET', `/mesh/${i}`);
    }
  }));

  const failures = replies
    .map((r, i) => ({ i, r }))
    .filter(({ i, r }) => r?.status !== 200 || r.error !== undefined || r.body !== (i % 5 === 0 ? `POST /mesh/${i} payload-${i}` : `GET /mesh/${i} `));
  assert.deepEqual(failures.slice(0, 5), [], `${failures.length} of ${REQUESTS} requests failed`);
  assert.equal(mesh.upstream.requests.length, REQUESTS, 'the workload received each request exactly once');

  const allowed = await waitForEvents(mesh.inbound.logFile, (e) => e.verdict === 'allow' && e.request.path.startsWith('/mesh/'), REQUESTS);
  assert.equal(allowed.length, REQUESTS, 'the inbound sidecar logged one allow per request');
  assert.ok(allowed.every((e) => e.peer.spiffe_id === TEST_IDS.httpbin && e.status === 200));
  const all = parseDecisionLines(decisionLogLines(mesh.inbound.logFile));
  assert.deepEqual(all.filter((e) => e.verdict !== 'allow').map((e) => `${e.verdict} ${e.reason}`), [], 'no denials, refusals or resets at the inbound');

  // The stream that follows the burst still works: no session was left poisoned by GOAWAY or resets.
  const after = await h2Call(session, 'GET', '/mesh/after');
  assert.equal(after.status, 200);
  assert.equal(after.body, 'GET /mesh/after ');
});

test('a plain HTTP/2 response without trailers ends the app stream with END_STREAM, not a reset or a hang', async () => {
  const mesh = await startMesh();
  const session = http2.connect(`http://127.0.0.1:${mesh.outboundPort}`);
  session.on('error', () => { /* reported per stream */ });
  cleanups.push(() => new Promise<void>((r) => { session.close(() => r()); }));
  const reply = await h2Call(session, 'GET', '/mesh/single');
  assert.equal(reply.error, undefined);
  assert.equal(reply.status, 200);
  assert.equal(reply.body, 'GET /mesh/single ');
  assert.equal(reply.rstCode, http2.constants.NGHTTP2_NO_ERROR);
});
