// Owns `portcullis certs webhook`: the admission webhook's serving certificate on disk (ca.crt, ca.key,
// tls.crt, tls.key) and the caBundle on stdout for the MutatingWebhookConfiguration.

import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseTtl } from '../identity/issue.js';
import { issueServingCert } from '../kubernetes/serving-cert.js';
import type { CertsIo } from './certs-io.js';

export const WEBHOOK_USAGE = `usage: portcullis certs webhook --out DIR [options]

Issues the serving certificate of \`portcullis webhook\` for the name the API server calls,
SERVICE.NAMESPACE.svc: DIR/tls.crt, DIR/tls.key (mode 0600), and its CA DIR/ca.crt, DIR/ca.key
(mode 0600; reused when present, so the caBundle stays valid across renewals). Prints the caBundle
(base64 of ca.crt) on standard output for \`portcullis webhook manifests --ca-bundle\`.

options:
  --out DIR            output directory (created if missing)
  --namespace NS       namespace of the webhook Service (default portcullis-system)
  --service NAME       name of the webhook Service (default portcullis-webhook)
  --ttl DURATION       certificate lifetime (default 8760h); units ms, s, m, h, d
  -h, --help           show this help`;

const dnsLabel = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

async function writeAtomic(path: string, text: string, mode: number): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, text, { mode });
  await chmod(tmp, mode);
  await rename(tmp, path);
}

export async function webhookCerts(argv: string[], io: CertsIo): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      out: { type: 'string' },
      namespace: { type: 'string', default: 'portcullis-system' },
      service: { type: 'string', default: 'portcullis-webhook' },
      ttl: { type: 'string', default: '8760h' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) { io.out(WEBHOOK_USAGE + '\n'); return 0; }
  if (values.out === undefined || values.out === '') { io.err('portcullis certs: --out is required\n'); return 2; }
  for (const [flag, v] of [['--namespace', values.namespace], ['--service', values.service]] as const) {
    if (!dnsLabel.test(v) || v.length > 63) { io.err(`portcullis certs: ${flag} '${v}' is not a valid Kubernetes name (a DNS label)\n`); return 2; }
  }
  const ttl = parseTtl(values.ttl);
  if (!ttl.ok) { io.err(`portcullis certs: ${ttl.error}\n`); return 2; }
  const out = values.out;
  const caCertPath = join(out, 'ca.crt');
  const caKeyPath = join(out, 'ca.key');
  let ca: { certPem: string; keyPem: string } | undefined;
  if (existsSync(caCertPath) && existsSync(caKeyPath)) ca = { certPem: await readFile(caCertPath, 'utf8'), keyPem: await readFile(caKeyPath, 'utf8') };
  let material;
  try {
    material = issueServingCert({ service: values.service, namespace: values.namespace, ttlMs: ttl.ms, now: Date.now(), ...(ca ? { ca } : {}) });
  } catch (err) {
    io.err(`portcullis certs: ${(err as Error).message}\n`);
    return 2;
  }
  await mkdir(out, { recursive: true });
  if (!ca) {
    await writeAtomic(caKeyPath, material.caKeyPem, 0o600);
    await writeAtomic(caCertPath, material.caCertPem, 0o644);
  }
  await writeAtomic(join(out, 'tls.key'), material.keyPem, 0o600);
  await writeAtomic(join(out, 'tls.crt'), material.certPem, 0o644);
  io.err(`${ca ? 'renewed with the existing CA' : 'issued with a new CA'}: ${material.dnsNames.join(', ')} (valid until ${material.notAfter.toISOString()})\n  ${join(out, 'tls.crt')}\n  ${join(out, 'tls.key')} (0600)\n  ${caCertPath}\n`);
  io.out(Buffer.from(material.caCertPem, 'utf8').toString('base64') + '\n');
  return 0;
}
