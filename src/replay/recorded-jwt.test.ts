// Recorded claims under a candidate's RequestAuthentications, decided through the data plane's own stages:
// where the candidate looks for a token, which issuer and audience it accepts, what it writes into headers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compilePolicies } from '../policy/compile.js';
import type { CompileOptions } from '../policy/ir.js';
import type { PolicySnapshot } from '../policy/snapshot.js';
import { decideRequestDetailed, type CheckRequest } from '../check/decide.js';
import { parseWorkloadFlags } from '../config/load.js';
import { recordedJwt, type RecordedToken, type ReplayJwtOutcome } from './recorded-jwt.js';

// The defaults `portcullis replay` compiles with (compatibility: secure).
const options: CompileOptions = parseWorkloadFlags(['--namespace', 'shop', '--labels', 'app=api', '--service-account', 'api']).options;
const JWKS = `'{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","kid":"k1"}]}'`;

function compile(requestAuthentication: string, authorization = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: orders, namespace: shop}
spec:
  rules:
  - from: [{source: {requestPrincipals: ["https://issuer.example/alice"]}}]
`): PolicySnapshot {
  const r = compilePolicies([{ file: 'p.yaml', text: `${requestAuthentication}\n---\n${authorization}` }], options);
  assert.ok(r.snapshot && !r.diagnostics.some((d) => d.severity === 'error'), JSON.stringify(r.diagnostics));
  return r.snapshot;
}

const ra = (extra = '') => `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: shop}
spec:
  jwtRules:
  - issuer: https://issuer.example
    jwks: ${JWKS}
${extra}`;

const claims = { iss: 'https://issuer.example', sub: 'alice', aud: 'orders', exp: 1_900_000_000 };
const request = (extra: Partial<CheckRequest> = {}): CheckRequest => ({
  method: 'GET', path: '/orders/1', host: 'api.shop', headers: { authorization: 'Bearer [redacted]' }, peer: 'spiffe://cluster.local/ns/shop/sa/web', sourceIp: '10.0.0.7', port: 8080, ...extra,
});

async function decide(snapshot: PolicySnapshot, req: CheckRequest, token: RecordedToken) {
  const outcome: ReplayJwtOutcome = { unverifiable: false };
  const result = await decideRequestDetailed(snapshot, req, { authenticator: recordedJwt(snapshot).authenticatorFor(token, outcome) });
  return { ...result.output, unverifiable: outcome.unverifiable, upstreamHeaders: result.context?.headers };
}

test('recorded claims found where the candidate looks are the verified principal', async () => {
  const out = await decide(compile(ra()), request(), { kind: 'verified', claims });
  assert.equal(out.verdict, 'allow');
  assert.equal(out.reason, 'allow_policy_matched');
});

test('a candidate that trusts another issuer or audience refuses the recorded token as the data plane would', async () => {
  const otherIssuer = await decide(compile(ra().replace('https://issuer.example', 'https://other.example')), request(), { kind: 'verified', claims });
  assert.deepEqual([otherIssuer.verdict, otherIssuer.status, otherIssuer.reason], ['unauthenticated', 401, 'jwt_unknown_issuer']);
  const otherAudience = await decide(compile(ra('    audiences: [billing]')), request(), { kind: 'verified', claims });
  assert.deepEqual([otherAudience.verdict, otherAudience.status, otherAudience.reason], ['unauthenticated', 403, 'jwt_bad_audience']);
  const requireExp = await decide(compile(ra()), request(), { kind: 'verified', claims: { iss: claims.iss, sub: 'alice' } });
  assert.equal(requireExp.reason, 'jwt_expired', 'the secure default requires exp');
});

test('a candidate that reads the token elsewhere, or not at all, sees no principal', async () => {
  const elsewhere = await decide(compile(ra('    fromHeaders: [{name: x-jwt}]')), request(), { kind: 'verified', claims });
  assert.deepEqual([elsewhere.verdict, elsewhere.reason], ['deny', 'no_allow_policy_matched']);
  const fromParam = await decide(compile(ra('    fromParams: [token]')), request({ path: '/orders/1?token', headers: {} }), { kind: 'verified', claims });
  assert.equal(fromParam.verdict, 'allow', 'a parameter name without its value still says where the token was');
});

test('claims the candidate writes into headers are what its header conditions see', async () => {
  const snapshot = compile(ra('    outputClaimToHeaders: [{header: x-user, claim: sub}]'), `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: orders, namespace: shop}
spec:
  rules:
  - when: [{key: "request.headers[x-user]", values: [alice]}]
`);
  const out = await decide(snapshot, request({ headers: { authorization: 'Bearer [redacted]', 'x-user': 'mallory' } }), { kind: 'verified', claims });
  assert.equal(out.verdict, 'allow');
  assert.equal(out.upstreamHeaders?.['x-user'], 'alice', 'the client copy is replaced by the claim');
});

test('a token refused when recorded stays refused; a token never verified makes the event unverifiable', async () => {
  const failed = await decide(compile(ra()), request(), { kind: 'failed', reason: 'jwt_expired', status: 401, message: 'Jwt is expired' });
  assert.deepEqual([failed.verdict, failed.reason], ['unauthenticated', 'jwt_expired']);
  const unknown = await decide(compile(ra()), request(), { kind: 'none' });
  assert.equal(unknown.unverifiable, true);
  const noToken = await decide(compile(ra()), request({ headers: {} }), { kind: 'none' });
  assert.equal(noToken.unverifiable, false);
  assert.equal(noToken.verdict, 'deny');
});
