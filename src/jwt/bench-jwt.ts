// Owns the JWT verification benchmark: authenticate() throughput with a cached, already-imported key
// (RS256 and ES256) and for token-less requests. Prints figures; asserts nothing about speed.
// Run: node --import tsx src/jwt/bench-jwt.ts   (or the compiled dist/src/jwt/bench-jwt.js)

import { createJwtAuthenticator } from './authenticator.js';
import type { JwtRequestView } from './types.js';
import { authOptions, jwksJson, makeKey, mint, provider } from './testing.js';

const ISS = 'https://issuer.example';

async function measure(label: string, iterations: number, fn: () => unknown): Promise<void> {
  for (let i = 0; i < Math.min(2000, iterations); i++) await fn(); // warm-up: imports, JIT
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) await fn();
  const ns = Number(process.hrtime.bigint() - start) / iterations;
  console.log(`${label.padEnd(38)} ${ns.toFixed(0).padStart(8)} ns/op  ${(1e9 / ns).toFixed(0).padStart(8)} ops/s`);
}

/** Same, with `concurrency` calls in flight (a proxy serves many requests at once). */
async function measureConcurrent(label: string, iterations: number, concurrency: number, fn: () => unknown): Promise<void> {
  const start = process.hrtime.bigint();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < iterations) {
      next++;
      await fn();
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const ns = Number(process.hrtime.bigint() - start) / iterations;
  console.log(`${label.padEnd(38)} ${ns.toFixed(0).padStart(8)} ns/op  ${(1e9 / ns).toFixed(0).padStart(8)} ops/s`);
}

async function main(): Promise<void> {
  const iterations = Number(process.argv[2] ?? 20_000);
  const rsa = await makeKey('RS256', 'rsa');
  const ec = await makeKey('ES256', 'ec');
  const ed = await makeKey('EdDSA', 'ed');
  const authn = createJwtAuthenticator(
    [provider({ issuer: ISS, jwks: { kind: 'inline', json: jwksJson(rsa, ec, ed) }, outputClaimToHeaders: [{ header: 'x-sub', claim: 'sub' }] })],
    authOptions(),
  );
  const payload = { iss: ISS, sub: 'alice', aud: 'api', exp: Math.floor(Date.now() / 1000) + 3600, scope: 'read write' };
  const request = (token: string): JwtRequestView => ({ method: 'GET', target: '/api', headers: { authorization: `Bearer ${token}` } });
  const rsaReq = request(await mint(rsa, payload));
  const ecReq = request(await mint(ec, payload));
  const edReq = request(await mint(ed, payload));
  const noToken: JwtRequestView = { method: 'GET', target: '/api', headers: {} };
  for (const r of [rsaReq, ecReq, edReq]) {
    const result = await authn.authenticate(r);
    if (result.kind !== 'verified') throw new Error(`bench token not verified: ${JSON.stringify(result)}`);
  }
  console.log(`node ${process.version}, ${iterations} sequential authenticate() calls each, cached imported keys`);
  await measure('RS256 (2048-bit) verified', iterations, () => authn.authenticate(rsaReq));
  await measure('ES256 verified', iterations, () => authn.authenticate(ecReq));
  await measure('EdDSA (Ed25519) verified', iterations, () => authn.authenticate(edReq));
  await measure('no token (none)', iterations, () => authn.authenticate(noToken));
  await measureConcurrent('RS256 verified, 32 in flight', iterations, 32, () => authn.authenticate(rsaReq));
  await measureConcurrent('ES256 verified, 32 in flight', iterations, 32, () => authn.authenticate(ecReq));
  authn.close();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
