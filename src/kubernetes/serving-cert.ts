// Owns the webhook's serving certificate: a private CA and a leaf for `<service>.<namespace>.svc`, the name
// the API server verifies (RFC 5280 serverAuth). Not SPIFFE: the API server is no mesh peer.

import { X509Certificate } from 'node:crypto';
import { buildCertificate, generateKeyPair, privateKeyPem, publicKeyOf } from '../identity/x509-build.js';
import { loadPrivateKey } from '../identity/x509-build.js';

export interface ServingCertMaterial {
  caCertPem: string;
  caKeyPem: string;
  certPem: string;
  keyPem: string;
  dnsNames: string[];
  notAfter: Date;
}

const backdateMs = 5 * 60_000;

/** DNS names the API server may use for a Service-backed webhook. */
export function serviceDnsNames(service: string, namespace: string): string[] {
  return [`${service}.${namespace}.svc`, `${service}.${namespace}.svc.cluster.local`];
}

export function issueServingCert(opts: {
  service: string;
  namespace: string;
  ttlMs: number;
  now: number;
  /** Reuse an existing CA (PEM) so the caBundle in the cluster stays valid across renewals. */
  ca?: { certPem: string; keyPem: string };
}): ServingCertMaterial {
  const notBefore = new Date(opts.now - backdateMs);
  let caCert: X509Certificate;
  let caKeyPem: string;
  if (opts.ca) {
    caCert = new X509Certificate(opts.ca.certPem);
    caKeyPem = opts.ca.keyPem;
    if (!caCert.ca) throw new Error('the CA certificate is not a CA (basicConstraints cA=false)');
    if (!caCert.checkPrivateKey(loadPrivateKey(caKeyPem))) throw new Error('the CA key does not match the CA certificate');
  } else {
    const caKeys = generateKeyPair('ec');
    caCert = buildCertificate({
      publicKey: caKeys.publicKey,
      signingKey: caKeys.privateKey,
      subject: { organization: 'Portcullis', commonName: `Portcullis webhook CA (${opts.namespace})`.slice(0, 64) },
      notBefore,
      notAfter: new Date(opts.now + opts.ttlMs + 24 * 3_600_000),
      isCA: true,
      pathLen: 0,
      keyUsage: ['keyCertSign', 'cRLSign'],
      keyUsageCritical: true,
    });
    caKeyPem = privateKeyPem(caKeys.privateKey);
  }
  const signingKey = loadPrivateKey(caKeyPem);
  const notAfter = new Date(Math.min(opts.now + opts.ttlMs, Date.parse(caCert.validTo)));
  const dnsNames = serviceDnsNames(opts.service, opts.namespace);
  const keys = generateKeyPair('ec');
  const leaf = buildCertificate({
    publicKey: keys.publicKey,
    signingKey,
    issuer: caCert,
    subject: { organization: 'Portcullis', commonName: (dnsNames[0] as string).slice(0, 64) },
    notBefore,
    notAfter,
    dns: dnsNames,
    isCA: false,
    keyUsage: ['digitalSignature'],
    keyUsageCritical: true,
    extKeyUsage: ['serverAuth'],
  });
  if (!leaf.checkIssued(caCert) || !leaf.verify(publicKeyOf(signingKey))) throw new Error('internal error: the serving certificate does not verify under its CA');
  return { caCertPem: caCert.toString(), caKeyPem, certPem: leaf.toString(), keyPem: privateKeyPem(keys.privateKey), dnsNames, notAfter };
}
