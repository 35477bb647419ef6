// Owns the demo's throwaway key material: a CA, X509-SVIDs for service-a, service-b and intruder, and
// an ES256 JWT issuer (JWKS + a signed token). For demos only; follows SPIFFE X509-SVID and RFC 7517/7519.

import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exportJWK, SignJWT } from 'jose';
import { createCa, issueSvid } from '../identity/issue.js';
import { generateKeyPair } from '../identity/x509-build.js';

export const DEMO_TRUST_DOMAIN = 'cluster.local';
export const DEMO_NAMESPACE = 'demo';
export const DEMO_WORKLOADS = ['service-a', 'service-b', 'intruder'] as const;
export type DemoWorkload = (typeof DEMO_WORKLOADS)[number];
export const DEMO_JWT_ISSUER = 'https://issuer.portcullis.demo';
export const DEMO_JWT_AUDIENCE = 'service-b';

export function demoSpiffeId(workload: DemoWorkload): string {
  return `spiffe://${DEMO_TRUST_DOMAIN}/ns/${DEMO_NAMESPACE}/sa/${workload}`;
}

export interface DemoPki {
  dir: string;
  bundle: string;
  certs: Record<DemoWorkload, { cert: string; key: string; spiffeId: string }>;
  jwks: string;
  /** A valid token (iss DEMO_JWT_ISSUER, aud service-b, sub orders-client) for the JWT-protected call. */
  token: string;
  tokenFile: string;
}

const HOUR = 3_600_000;

/** Writes ca.crt, <workload>.crt/.key (keys 0600), jwks.json and demo.jwt into `dir`. */
export async function makeDemoPki(dir: string, opts: { validHours?: number } = {}): Promise<DemoPki> {
  mkdirSync(dir, { recursive: true });
  const now = Date.now();
  const validMs = (opts.validHours ?? 24) * HOUR;
  // Same minting as `portcullis certs init|issue`; the CA outlives the SVIDs so they can be renewed.
  const ca = createCa({ trustDomain: DEMO_TRUST_DOMAIN, ttlMs: validMs + HOUR, now });
  const bundle = join(dir, 'ca.crt');
  writeFileSync(bundle, ca.certPem);
  const certs = {} as DemoPki['certs'];
  for (const workload of DEMO_WORKLOADS) {
    const svid = issueSvid({
      caCertPem: ca.certPem, caKeyPem: ca.keyPem, spiffeId: demoSpiffeId(workload), ttlMs: validMs, now,
      // Identity is the URI SAN alone; DNS/IP SANs only let curl's hostname check pass in the demo.
      dns: ['localhost', workload, `${workload}.${DEMO_NAMESPACE}.svc.cluster.local`],
      ips: ['127.0.0.1'],
    });
    const cert = join(dir, `${workload}.crt`);
    const key = join(dir, `${workload}.key`);
    writeFileSync(cert, svid.certPem);
    writeFileSync(key, svid.keyPem, { mode: 0o600 });
    chmodSync(key, 0o600);
    certs[workload] = { cert, key, spiffeId: svid.spiffeId };
  }

  const jwtKeys = generateKeyPair('ec');
  const jwk = { ...(await exportJWK(jwtKeys.publicKey)), kid: 'demo-1', alg: 'ES256', use: 'sig' };
  const jwks = join(dir, 'jwks.json');
  writeFileSync(jwks, JSON.stringify({ keys: [jwk] }, null, 2) + '\n');
  const token = await new SignJWT({ scope: 'orders:write' })
    .setProtectedHeader({ alg: 'ES256', kid: 'demo-1', typ: 'JWT' })
    .setIssuer(DEMO_JWT_ISSUER)
    .setAudience(DEMO_JWT_AUDIENCE)
    .setSubject('orders-client')
    .setIssuedAt(Math.floor(now / 1000))
    .setExpirationTime(Math.floor((now + validMs) / 1000))
    .sign(jwtKeys.privateKey);
  const tokenFile = join(dir, 'demo.jwt');
  writeFileSync(tokenFile, token + '\n', { mode: 0o644 });
  return { dir, bundle, certs, jwks, token, tokenFile };
}
