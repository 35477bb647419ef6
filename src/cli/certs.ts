// Owns `portcullis certs`: make a demo CA (`init`) and issue or renew X509-SVIDs (`issue`) on disk.
// Certificates follow the SPIFFE X509-SVID profile; files are written atomically, keys with mode 0600.

import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createCa, describeSvid, issueSvid, IssueError, parseTtl } from '../identity/issue.js';
import { checkTrustDomain } from '../identity/spiffe.js';
import type { KeyType } from '../identity/x509-build.js';
import type { CertsIo } from './certs-io.js';
import { webhookCerts } from './certs-webhook.js';

const USAGE = `usage: portcullis certs <init|issue|webhook> [options]

  init    create a demo certificate authority (ca.crt, ca.key)
  issue   issue or renew an X509-SVID (svid.crt, svid.key, bundle.crt)
  webhook issue the admission webhook's serving certificate and print its caBundle

Run \`portcullis certs <init|issue|webhook> --help\` for the options. These certificates are for demos and
tests; production SVIDs come from SPIRE, Istio or Linkerd.`;

const INIT_USAGE = `usage: portcullis certs init --trust-domain TD --out DIR [options]

Creates a self-signed CA for trust domain TD: DIR/ca.crt and DIR/ca.key (mode 0600).

options:
  --trust-domain TD   trust domain, e.g. cluster.local (lowercase letters, digits, '.', '-', '_')
  --out DIR           output directory (created if missing)
  --ttl DURATION      CA lifetime (default 8760h = 1 year); units ms, s, m, h, d
  --key-type ec|rsa   key algorithm (default ec = ECDSA P-256)
  --force             overwrite an existing CA in DIR
  -h, --help          show this help`;

const ISSUE_USAGE = `usage: portcullis certs issue --ca DIR --spiffe-id ID --out DIR [options]

Issues an X509-SVID signed by the CA in --ca: DIR/svid.crt (leaf + chain), DIR/svid.key (mode 0600)
and DIR/bundle.crt (the CA certificates peers must trust).

options:
  --ca DIR            directory holding ca.crt and ca.key (from \`portcullis certs init\`)
  --spiffe-id ID      spiffe://<trust-domain>/<path>, e.g. spiffe://cluster.local/ns/demo/sa/service-a
  --out DIR           output directory (created if missing)
  --ttl DURATION      SVID lifetime (default 24h; short ones like 5m are fine); units ms, s, m, h, d
  --dns NAMES         comma-separated DNS SANs to add (e.g. localhost,service-a)
  --ip ADDRS          comma-separated IP SANs to add (e.g. 127.0.0.1)
  --key-type ec|rsa   key algorithm (default ec = ECDSA P-256)
  --renew             replace the SVID in DIR with a fresh key and certificate for the same ID
                      (keeps its DNS/IP SANs unless given; keeps its lifetime unless --ttl)
  --force             overwrite existing files in DIR
  -h, --help          show this help`;

class UsageError extends Error {}

function list(value: string | undefined): string[] {
  return value === undefined ? [] : value.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
}

function keyTypeOf(value: string | undefined): KeyType {
  if (value === undefined || value === 'ec') return 'ec';
  if (value === 'rsa') return 'rsa';
  throw new UsageError(`--key-type must be ec or rsa, not '${value}'`);
}

function ttlOf(value: string | undefined, fallbackMs: number): number {
  if (value === undefined) return fallbackMs;
  const r = parseTtl(value);
  if (!r.ok) throw new UsageError(r.error);
  return r.ms;
}

function required(value: string | undefined, flag: string): string {
  if (value === undefined || value === '') throw new UsageError(`${flag} is required`);
  return value;
}

/** Write to a temporary name then rename, so file watchers never see half a certificate. */
async function writeAtomic(path: string, text: string, mode: number): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, text, { mode });
  await chmod(tmp, mode);
  await rename(tmp, path);
}

function refuseOverwrite(paths: string[], hint: string): void {
  const existing = paths.filter((p) => existsSync(p));
  if (existing.length > 0) throw new UsageError(`refusing to overwrite ${existing.join(', ')} (${hint})`);
}

async function init(argv: string[], io: CertsIo): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      'trust-domain': { type: 'string' },
      out: { type: 'string' },
      ttl: { type: 'string' },
      'key-type': { type: 'string' },
      force: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    io.out(INIT_USAGE + '\n');
    return 0;
  }
  const trustDomain = required(values['trust-domain'], '--trust-domain');
  const tdError = checkTrustDomain(trustDomain);
  if (tdError) throw new UsageError(`invalid --trust-domain '${trustDomain}': ${tdError}`);
  const out = required(values.out, '--out');
  const ttlMs = ttlOf(values.ttl, 8760 * 3600_000);
  const keyType = keyTypeOf(values['key-type']);
  const certPath = join(out, 'ca.crt');
  const keyPath = join(out, 'ca.key');
  if (!values.force) refuseOverwrite([certPath, keyPath], 'use --force to replace the CA');
  const ca = createCa({ trustDomain, ttlMs, keyType, now: Date.now() });
  await mkdir(out, { recursive: true });
  await writeAtomic(keyPath, ca.keyPem, 0o600);
  await writeAtomic(certPath, ca.certPem, 0o644);
  io.out(`created CA for spiffe://${trustDomain}\n  ${certPath}\n  ${keyPath} (0600)\n`);
  return 0;
}

async function issue(argv: string[], io: CertsIo): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      ca: { type: 'string' },
      'spiffe-id': { type: 'string' },
      out: { type: 'string' },
      ttl: { type: 'string' },
      dns: { type: 'string' },
      ip: { type: 'string' },
      'key-type': { type: 'string' },
      renew: { type: 'boolean', default: false },
      force: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    io.out(ISSUE_USAGE + '\n');
    return 0;
  }
  const caDir = required(values.ca, '--ca');
  const out = required(values.out, '--out');
  const certPath = join(out, 'svid.crt');
  const keyPath = join(out, 'svid.key');
  const bundlePath = join(out, 'bundle.crt');

  let spiffeId = values['spiffe-id'];
  let dns = list(values.dns);
  let ips = list(values.ip);
  let defaultTtl = 24 * 3600_000;
  if (values.renew) {
    if (!existsSync(certPath)) throw new UsageError(`--renew needs an existing SVID at ${certPath}`);
    const old = describeSvid(await readFile(certPath, 'utf8'));
    if (spiffeId !== undefined && spiffeId !== old.spiffeId) throw new UsageError(`--renew keeps the SPIFFE ID: ${certPath} is ${old.spiffeId}, not ${spiffeId}`);
    spiffeId = old.spiffeId;
    if (values.dns === undefined) dns = old.dns;
    if (values.ip === undefined) ips = old.ips;
    defaultTtl = Math.max(1000, old.lifetimeMs);
  } else if (!values.force) {
    refuseOverwrite([certPath, keyPath, bundlePath], 'use --renew to rotate the SVID or --force to replace everything');
  }
  const id = required(spiffeId, '--spiffe-id');
  const ttlMs = ttlOf(values.ttl, defaultTtl);
  const keyType = keyTypeOf(values['key-type']);

  let caCertPem: string;
  let caKeyPem: string;
  try {
    caCertPem = await readFile(join(caDir, 'ca.crt'), 'utf8');
    caKeyPem = await readFile(join(caDir, 'ca.key'), 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read the CA in ${caDir}: ${(err as Error).message} (create one with \`portcullis certs init\`)`);
  }
  const svid = issueSvid({ caCertPem, caKeyPem, spiffeId: id, ttlMs, dns, ips, keyType, now: Date.now() });
  await mkdir(out, { recursive: true });
  // Key first, then certificate: a watcher that reads in between sees a mismatch and keeps the old pair.
  await writeAtomic(keyPath, svid.keyPem, 0o600);
  await writeAtomic(certPath, svid.certPem, 0o644);
  await writeAtomic(bundlePath, svid.bundlePem, 0o644);
  io.out(
    `${values.renew ? 'renewed' : 'issued'} ${svid.spiffeId} (valid until ${svid.notAfter.toISOString()})\n  ${certPath}\n  ${keyPath} (0600)\n  ${bundlePath}\n`,
  );
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  return runCerts(argv, { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) });
}

export async function runCerts(argv: string[], io: CertsIo): Promise<number> {
  const [sub, ...rest] = argv;
  try {
    if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
      io.out(USAGE + '\n');
      return sub === undefined ? 2 : 0;
    }
    if (sub === 'init') return await init(rest, io);
    if (sub === 'issue') return await issue(rest, io);
    if (sub === 'webhook') return await webhookCerts(rest, io);
    throw new UsageError(`unknown subcommand '${sub}'\n\n${USAGE}`);
  } catch (err) {
    // Usage, validation and file errors alike: nothing was half-written (writes are atomic), exit 2.
    const known = err instanceof UsageError || err instanceof IssueError || String((err as { code?: unknown }).code).startsWith('ERR_PARSE_ARGS');
    io.err(`portcullis certs: ${known ? '' : 'error: '}${(err as Error).message}\n`);
    return 2;
  }
}
