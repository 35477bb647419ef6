// Owns the sidecar's own X509-SVID, key and trust bundle: loaded, validated, served as TLS options, and
// hot-swapped on rotation (keep last good; security.md §5 and Envoy CVE-2022-21654 on stale resumption).

import { createHash, createPrivateKey, randomBytes, X509Certificate, constants as cryptoConstants } from 'node:crypto';
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { createSecureContext, type ConnectionOptions, type DetailedPeerCertificate, type PeerCertificate, type SecureContext, type SecureContextOptions, type Server as TlsServer } from 'node:tls';
import { PeerVerifier, type TrustBundle } from './peer.js';
import type { RevocationList } from './crl.js';
import { parseSpiffeId } from './spiffe.js';
import { stderrOpLogger } from '../observe/op-log.js';
import { decodeSubjectAltNames, OID, parseCertificate } from './x509-parse.js';

export interface IdentityLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface CredentialFiles {
  certFile: string;
  keyFile: string;
  trustBundleFile: string;
}

/** One validated, immutable generation of credentials. */
export interface Credentials {
  /** Client-side context (own SVID + bundle as CA) for originating mTLS. */
  secureContext: SecureContext;
  /** The trust bundle as certificates; a new array object per generation (PeerVerifier caches by it). */
  bundle: TrustBundle;
  ownSpiffeId: string;
  notAfter: Date;
  /** PEM text as loaded (own chain, key, bundle); used to build server contexts. */
  certPem: string;
  keyPem: string;
  bundlePem: string;
  /** Increments on every successful swap, starting at 1. */
  generation: number;
  /** SHA-256 over the three files; identifies this generation in logs. */
  digest: string;
}

export interface ReloadResult {
  ok: boolean;
  /** False when the files were unchanged since the last attempt. */
  changed: boolean;
  error?: string;
}

export interface CredentialStoreOptions extends CredentialFiles {
  logger?: IdentityLogger;
  /**
   * Poll period, the fallback for file systems where fs.watch misses events (ms; 0 = off). Default: 30 s
   * while every directory is watched, 2 s when fs.watch is off or could not be set up.
   */
  pollIntervalMs?: number;
  /** Quiet time after a file event before reloading, so cert and key written together land as one (ms, default 200). */
  debounceMs?: number;
  /** Set false to load once and never watch (CLI checks, tests). Default true. */
  watch?: boolean;
  /** Set false to rely on polling alone (network file systems). Default true. */
  fsWatch?: boolean;
  now?: () => number;
}

export class CredentialError extends Error {}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;
const MIN_TLS_VERSION = 'TLSv1.2' as const;

function splitCertificates(pem: string, what: string): X509Certificate[] {
  const blocks = pem.match(PEM_CERT) ?? [];
  if (blocks.length === 0) throw new CredentialError(`${what} holds no PEM certificate`);
  return blocks.map((block, i) => {
    try {
      return new X509Certificate(block);
    } catch (err) {
      throw new CredentialError(`${what}: certificate #${i + 1} is not parseable (${(err as Error).message})`);
    }
  });
}

/**
 * Validates one set of credential PEM texts; throws CredentialError with a clear message. Checks: the
 * chain and bundle parse, the key matches the leaf, the leaf is an X509-SVID with one valid SPIFFE ID,
 * the leaf is currently valid, every bundle entry is a CA. Returns warnings for odd-but-usable states.
 */
export function buildCredentials(certPem: string, keyPem: string, bundlePem: string, nowMs: number, generation = 1): { credentials: Credentials; warnings: string[] } {
  const warnings: string[] = [];
  const chain = splitCertificates(certPem, 'certificate file');
  const leaf = chain[0]!;
  let key;
  try {
    key = createPrivateKey(keyPem);
  } catch (err) {
    throw new CredentialError(`key file is not a parseable private key (${(err as Error).message})`);
  }
  if (!leaf.checkPrivateKey(key)) throw new CredentialError('key file does not match the certificate');
  const bundle = splitCertificates(bundlePem, 'trust bundle');
  bundle.forEach((ca, i) => {
    if (!ca.ca) throw new CredentialError(`trust bundle certificate #${i + 1} (${ca.subject.replace(/\n/g, ', ')}) is not a CA certificate`);
    if (Date.parse(ca.validTo) < nowMs) warnings.push(`trust bundle certificate #${i + 1} expired at ${new Date(ca.validTo).toISOString()}`);
  });

  let parsed;
  try {
    parsed = parseCertificate(leaf.raw);
  } catch (err) {
    throw new CredentialError(`certificate is malformed (${(err as Error).message})`);
  }
  if (nowMs > parsed.notAfterMs) throw new CredentialError(`certificate expired at ${new Date(parsed.notAfterMs).toISOString()}`);
  if (nowMs < parsed.notBeforeMs) throw new CredentialError(`certificate is not valid before ${new Date(parsed.notBeforeMs).toISOString()}`);
  if (leaf.ca) throw new CredentialError('certificate is a CA certificate, not an X509-SVID');
  const sanExt = parsed.extensions.get(OID.subjectAltName);
  const uris = sanExt ? decodeSubjectAltNames(sanExt.value).uris : [];
  if (uris.length !== 1) throw new CredentialError(`certificate has ${uris.length} URI SANs; an X509-SVID has exactly one`);
  const id = parseSpiffeId(uris[0]!);
  if (!id.ok) throw new CredentialError(`certificate URI SAN is not a SPIFFE ID: ${id.error}`);

  const anchored = bundle.some((ca) => {
    const top = chain[chain.length - 1]!;
    return (top.checkIssued(ca) && top.verify(ca.publicKey)) || top.fingerprint256 === ca.fingerprint256;
  });
  if (!anchored) warnings.push('own certificate chain does not end at a CA in the trust bundle (peers with this bundle will refuse it)');

  const secureContext = createSecureContext({ cert: certPem, key: keyPem, ca: bundlePem, minVersion: MIN_TLS_VERSION });
  const digest = createHash('sha256').update(certPem).update('\0').update(keyPem).update('\0').update(bundlePem).digest('hex');
  return {
    credentials: Object.freeze({
      secureContext,
      bundle: Object.freeze(bundle),
      ownSpiffeId: id.id.text,
      notAfter: new Date(parsed.notAfterMs),
      certPem,
      keyPem,
      bundlePem,
      generation,
      digest,
    }),
    warnings,
  };
}

/**
 * TLS server options for a Credentials generation: pass to tls.createServer / http2.createSecureServer
 * (together with requestCert etc.) and to server.setSecureContext() on change. Session tickets are
 * off and ticket keys are fresh per generation, so no session resumes across a rotation.
 */
export function serverSecureOptions(c: Credentials): SecureContextOptions & { ticketKeys: Buffer } {
  return {
    cert: c.certPem,
    key: c.keyPem,
    ca: c.bundlePem,
    minVersion: MIN_TLS_VERSION,
    secureOptions: cryptoConstants.SSL_OP_NO_TICKET,
    ticketKeys: randomBytes(48),
  };
}

/** Why an outbound handshake was refused; carried on the Error thrown from checkServerIdentity. */
export class PeerIdentityError extends Error {
  constructor(
    readonly reason: string,
    detail: string,
  ) {
    super(detail);
  }
}

/**
 * TLS client options for originating mTLS to another sidecar: our SVID, the bundle as CA, and a
 * checkServerIdentity that replaces hostname checks with X509-SVID validation plus an exact SPIFFE ID
 * match (SVIDs need not carry DNS names). A mismatch fails the handshake: never plaintext, never "close enough".
 */
export function clientTlsOptions(
  c: Credentials,
  opts: { expectIdentity: string; trustDomains: readonly string[]; verifier?: PeerVerifier; now?: () => number; revocation?: () => RevocationList },
): ConnectionOptions {
  const verifier = opts.verifier ?? new PeerVerifier();
  const now = opts.now ?? Date.now;
  return {
    secureContext: c.secureContext,
    minVersion: MIN_TLS_VERSION,
    rejectUnauthorized: true,
    checkServerIdentity: (_host: string, cert: PeerCertificate): Error | undefined => {
      const chain: Buffer[] = [];
      let current: DetailedPeerCertificate | undefined = cert as DetailedPeerCertificate;
      for (let i = 0; i < 10 && current?.raw; i++) {
        chain.push(current.raw);
        const next: DetailedPeerCertificate | undefined = current.issuerCertificate;
        if (!next || next === current) break;
        current = next;
      }
      // The same CRLs as inbound, read per handshake so a reloaded list applies to the next connection.
      const r = verifier.verify(chain, c.bundle, { now: now(), trustDomains: opts.trustDomains, role: 'server', ...(opts.revocation ? { revocation: opts.revocation() } : {}) });
      if (!r.ok) return new PeerIdentityError(r.reason, `server certificate refused (${r.reason}): ${r.detail}`);
      if (r.peer.spiffeId !== opts.expectIdentity) {
        return new PeerIdentityError('identity_mismatch', `server identity ${r.peer.spiffeId} is not the expected ${opts.expectIdentity}`);
      }
      return undefined;
    },
  };
}

const stderrLogger: IdentityLogger = stderrOpLogger;

export class CredentialStore {
  private creds: Credentials;
  private readonly files: CredentialFiles;
  private readonly logger: IdentityLogger;
  private readonly now: () => number;
  private readonly debounceMs: number;
  private readonly changeListeners = new Set<(c: Credentials) => void>();
  private readonly reloadListeners = new Set<(r: ReloadResult) => void>();
  private readonly watchers: FSWatcher[] = [];
  private pollTimer: NodeJS.Timeout | undefined;
  private debounceTimer: NodeJS.Timeout | undefined;
  private lastSeenDigest: string;
  private inFlight: Promise<ReloadResult> | undefined;
  private again = false;
  private closed = false;
  /** Successful swaps and refused changes since start (for metrics). */
  readonly stats = { reloads: 0, failures: 0, lastError: undefined as string | undefined };

  private constructor(files: CredentialFiles, creds: Credentials, opts: CredentialStoreOptions) {
    this.files = files;
    this.creds = creds;
    this.lastSeenDigest = creds.digest;
    this.logger = opts.logger ?? stderrLogger;
    this.now = opts.now ?? Date.now;
    this.debounceMs = opts.debounceMs ?? 200;
  }

  /** Loads and validates the files; rejects with CredentialError when they are unusable (fail closed at start). */
  static async load(opts: CredentialStoreOptions): Promise<CredentialStore> {
    const files = { certFile: resolve(opts.certFile), keyFile: resolve(opts.keyFile), trustBundleFile: resolve(opts.trustBundleFile) };
    const texts = await readAll(files);
    const { credentials, warnings } = buildCredentials(texts.cert, texts.key, texts.bundle, (opts.now ?? Date.now)(), 1);
    const store = new CredentialStore(files, credentials, opts);
    for (const w of warnings) store.logger.warn({ event: 'credentials_warning', ...files }, w);
    store.logger.info({ event: 'credentials_loaded', spiffe_id: credentials.ownSpiffeId, not_after: credentials.notAfter.toISOString(), bundle_size: credentials.bundle.length }, 'loaded own SVID and trust bundle');
    if (opts.watch !== false) store.startWatching(opts.pollIntervalMs, opts.fsWatch !== false);
    return store;
  }

  current(): Credentials {
    return this.creds;
  }

  /** Seconds until the own certificate expires (negative once expired), for the expiry gauge. */
  secondsToExpiry(): number {
    return (this.creds.notAfter.getTime() - this.now()) / 1000;
  }

  /** Server options for the current generation (see serverSecureOptions). */
  serverOptions(): SecureContextOptions & { ticketKeys: Buffer } {
    return serverSecureOptions(this.creds);
  }

  /** Called with each new generation after a successful swap. Returns an unsubscribe function. */
  onChange(cb: (c: Credentials) => void): () => void {
    this.changeListeners.add(cb);
    return () => this.changeListeners.delete(cb);
  }

  /** Called after every reload attempt that saw changed files (ok or refused). */
  onReload(cb: (r: ReloadResult) => void): () => void {
    this.reloadListeners.add(cb);
    return () => this.reloadListeners.delete(cb);
  }

  /**
   * Keeps a TLS server's context in step with the store: new handshakes get the new SVID and bundle,
   * established connections are untouched. Returns an unsubscribe function.
   */
  bindServer(server: Pick<TlsServer, 'setSecureContext'>): () => void {
    return this.onChange(() => server.setSecureContext(this.serverOptions()));
  }

  /** Re-reads the files now (also what watching and polling call). Never throws. */
  reload(): Promise<ReloadResult> {
    if (this.inFlight) {
      this.again = true;
      return this.inFlight;
    }
    this.inFlight = this.doReload().finally(() => {
      this.inFlight = undefined;
      if (this.again && !this.closed) {
        this.again = false;
        void this.reload();
      }
    });
    return this.inFlight;
  }

  close(): void {
    this.closed = true;
    for (const w of this.watchers.splice(0)) w.close();
    if (this.pollTimer) clearInterval(this.pollTimer);
    if (this.debounceTimer) clearTimeout(this.debounceTimer);
    this.changeListeners.clear();
    this.reloadListeners.clear();
  }

  private async doReload(): Promise<ReloadResult> {
    let texts;
    try {
      texts = await readAll(this.files);
    } catch (err) {
      return this.refuse(`cannot read credential files: ${(err as Error).message}`, undefined);
    }
    const digest = createHash('sha256').update(texts.cert).update('\0').update(texts.key).update('\0').update(texts.bundle).digest('hex');
    if (digest === this.lastSeenDigest) return { ok: true, changed: false };
    let built;
    try {
      built = buildCredentials(texts.cert, texts.key, texts.bundle, this.now(), this.creds.generation + 1);
    } catch (err) {
      return this.refuse(err instanceof CredentialError ? err.message : `unexpected: ${(err as Error).message}`, digest);
    }
    if (this.closed) return { ok: false, changed: true, error: 'store closed' };
    this.lastSeenDigest = digest;
    const previous = this.creds;
    this.creds = built.credentials;
    this.stats.reloads++;
    for (const w of built.warnings) this.logger.warn({ event: 'credentials_warning' }, w);
    this.logger.info(
      {
        event: 'credentials_rotated',
        generation: this.creds.generation,
        spiffe_id: this.creds.ownSpiffeId,
        not_after: this.creds.notAfter.toISOString(),
        bundle_changed: previous.bundlePem !== this.creds.bundlePem,
      },
      'credentials rotated; new handshakes use the new SVID and bundle',
    );
    const result = { ok: true, changed: true };
    for (const cb of this.changeListeners) safeCall(() => cb(this.creds), this.logger);
    for (const cb of this.reloadListeners) safeCall(() => cb(result), this.logger);
    return result;
  }

  private refuse(error: string, digest: string | undefined): ReloadResult {
    // Remember the bad digest so the same broken files are reported once, not on every poll.
    if (digest !== undefined) this.lastSeenDigest = digest;
    else if (this.stats.lastError === error) return { ok: false, changed: false, error };
    this.stats.failures++;
    this.stats.lastError = error;
    this.logger.error(
      { event: 'credentials_reload_failed', error, generation: this.creds.generation, spiffe_id: this.creds.ownSpiffeId, not_after: this.creds.notAfter.toISOString() },
      'credential change refused; keeping the last good SVID and bundle',
    );
    const result = { ok: false, changed: true, error };
    for (const cb of this.reloadListeners) safeCall(() => cb(result), this.logger);
    return result;
  }

  private schedule(): void {
    if (this.closed) return;
    if (this.debounceTimer) clearTimeout(this.debounceTimer);
    this.debounceTimer = setTimeout(() => {
      this.debounceTimer = undefined;
      void this.reload();
    }, this.debounceMs);
    this.debounceTimer.unref();
  }

  private startWatching(pollIntervalOption: number | undefined, fsWatch: boolean): void {
    // Watch directories, not files: atomic renames and Kubernetes `..data` symlink swaps replace the
    // inode, which a file watch would silently lose.
    const dirs = new Map<string, Set<string>>();
    for (const f of [this.files.certFile, this.files.keyFile, this.files.trustBundleFile]) {
      const set = dirs.get(dirname(f)) ?? new Set<string>();
      set.add(basename(f));
      dirs.set(dirname(f), set);
    }
    let unwatched = fsWatch ? 0 : dirs.size;
    for (const dir of fsWatch ? dirs.keys() : []) {
      try {
        const watcher = watch(dir, { persistent: false }, () => this.schedule());
        watcher.on('error', (err) => this.logger.warn({ event: 'credentials_watch_error', dir, error: err.message }, 'file watch failed; relying on polling'));
        this.watchers.push(watcher);
      } catch (err) {
        unwatched++;
        this.logger.warn({ event: 'credentials_watch_error', dir, error: (err as Error).message }, 'file watch unavailable; relying on polling');
      }
    }
    // A slow safety poll while every directory is watched: an idle sidecar should not wake up every 2 s.
    const pollIntervalMs = pollIntervalOption ?? (unwatched === 0 ? 30_000 : 2000);
    if (pollIntervalMs > 0) {
      this.pollTimer = setInterval(() => void this.reload(), pollIntervalMs);
      this.pollTimer.unref();
    }
  }
}

function safeCall(fn: () => void, logger: IdentityLogger): void {
  try {
    fn();
  } catch (err) {
    logger.error({ event: 'credentials_listener_failed', error: (err as Error).message }, 'credential change listener threw');
  }
}

/**
 * Read synchronously: three small local files (a secret volume), read on every safety poll. Asynchronous
 * reads cost four thread-pool round trips per file, i.e. a dozen wake-ups of an otherwise idle sidecar.
 */
async function readAll(files: CredentialFiles): Promise<{ cert: string; key: string; bundle: string }> {
  return { cert: readFileSync(files.certFile, 'utf8'), key: readFileSync(files.keyFile, 'utf8'), bundle: readFileSync(files.trustBundleFile, 'utf8') };
}
