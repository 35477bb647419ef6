// Owns test fixtures for src/jwt: real key pairs, real tokens minted with jose, provider specs and a
// self-signed TLS certificate (node-forge) for a local HTTPS JWKS server. Used by tests and the bench only.

import { generateKeyPairSync } from 'node:crypto';
import { CompactSign, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import forge from 'node-forge';
import type { JwtProviderSpec } from '../policy/ir.js';
import type { JwtAuthenticatorOptions } from './types.js';

export interface TestKey {
  alg: string;
  kid: string;
  privateKey: CryptoKey;
  /** Public JWK with kid (and alg unless generated with `withAlg: false`). */
  publicJwk: JWK;
}

export async function makeKey(alg: 'RS256' | 'ES256' | 'ES384' | 'PS256' | 'EdDSA', kid: string, withAlg = true): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = { ...(await exportJWK(publicKey)), kid, ...(withAlg ? { alg } : {}), use: 'sig' };
  return { alg, kid, privateKey, publicJwk };
}

export function jwksJson(...keys: TestKey[]): string {
  return JSON.stringify({ keys: keys.map((k) => k.publicJwk) });
}

/**
 * Signs an arbitrary header + payload (no claim defaults), so tests can produce exactly the token they mean,
 * including ones a well-behaved library would refuse to build.
 */
export async function mint(
  key: TestKey,
  payload: Record<string, unknown>,
  header: Record<string, unknown> = {},
): Promise<string> {
  const protectedHeader = { alg: key.alg, kid: key.kid, ...header };
  const signer = new CompactSign(new TextEncoder().encode(JSON.stringify(payload)));
  // CompactSign validates `crit`; tests that need a `crit` header build the token by hand.
  return signer.setProtectedHeader(protectedHeader as { alg: string }).sign(key.privateKey);
}

/** Builds a compact token from raw header/payload JSON and a signature segment (for forged shapes). */
export function rawToken(header: unknown, payload: unknown, signature = 'c2ln'): string {
  const enc = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
  return `${enc(header)}.${enc(payload)}.${signature}`;
}

export function provider(overrides: Partial<JwtProviderSpec> = {}): JwtProviderSpec {
  return {
    policy: { dialect: 'istio', kind: 'RequestAuthentication', namespace: 'foo', name: 'jwt' },
    issuer: 'https://issuer.example',
    audiences: [],
    jwks: { kind: 'none' },
    fromHeaders: [],
    fromParams: [],
    fromCookies: [],
    forwardOriginalToken: false,
    outputPayloadToHeader: undefined,
    outputClaimToHeaders: [],
    spaceDelimitedClaims: [],
    timeoutMs: 5000,
    ...overrides,
  };
}

export function authOptions(overrides: Partial<JwtAuthenticatorOptions> = {}): JwtAuthenticatorOptions {
  return {
    now: () => Date.now(),
    fetchJwks: () => Promise.reject(new Error('no fetcher in this test')),
    clockSkewSeconds: 60,
    requireExpiration: false,
    maxTokenBytes: 8192,
    cacheTtlMs: 600_000,
    refreshIntervalMs: 0,
    staleGraceMs: 300_000,
    unknownKidMinIntervalMs: 30_000,
    ...overrides,
  };
}

/** A self-signed CA-less server certificate for 127.0.0.1 (its own PEM doubles as the trust anchor). */
export function selfSignedCert(): { cert: string; key: string } {
  // node:crypto makes the key quickly; node-forge only assembles and signs the certificate.
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const pubPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(pubPem);
  cert.serialNumber = '01';
  const now = new Date();
  cert.validity.notBefore = new Date(now.getTime() - 60_000);
  cert.validity.notAfter = new Date(now.getTime() + 24 * 3600_000);
  const attrs = [{ name: 'commonName', value: 'jwks.test' }];
  cert.setSubject(attrs);
  cert.setIssuer(attrs);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, keyCertSign: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }, { type: 2, value: 'localhost' }] },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(keyPem) as forge.pki.rsa.PrivateKey, forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: keyPem };
}

export interface JwksTestServer {
  url: string;
  ca: string;
  /** Requests received so far. */
  hits: () => number;
  /** What the next requests get. */
  serve: (status: number, body: string) => void;
  close: () => Promise<void>;
}

/** A real HTTPS JWKS server on 127.0.0.1, port 0, with a fresh self-signed certificate. */
export async function startJwksServer(body: string): Promise<JwksTestServer> {
  const { createServer } = await import('node:https');
  const { cert, key } = selfSignedCert();
  let status = 200;
  let current = body;
  let hits = 0;
  const server = createServer({ cert, key }, (req, res) => {
    hits++;
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(current);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  return {
    url: `https://127.0.0.1:${address.port}/jwks`,
    ca: cert,
    hits: () => hits,
    serve: (s, b) => {
      status = s;
      current = b;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
