// Owns the validated runtime Config of `portcullis run` (schema + defaults live in config/schema.ts).
// Every module is built from this one object by app.ts; nothing else reads flags or files for settings.

import type { CompileOptions } from '../policy/ir.js';
import type { CaptureSettings } from '../observe/capture.js';

export interface HostPort {
  host: string;
  port: number;
}

export interface InboundListenerConfig {
  /** Stable name used in logs/metrics (default `inbound-<port>`). */
  name: string;
  listen: HostPort;
  /** `http://127.0.0.1:8080` (HTTP/1.1 upstream), `h2c://127.0.0.1:9090` (HTTP/2 cleartext, gRPC) or `tcp://127.0.0.1:5432` (opaque). */
  upstream: string;
  /**
   * `http` (absent = http): requests are parsed and decided one by one. `tcp`: an opaque port, one decision
   * per connection (protocol 'tcp'), bytes piped to a `tcp://` upstream. Optional for backward compatibility.
   */
  protocol?: 'http' | 'tcp';
  /** `strict`: client certificate required. `permissive`: callers without one are plaintext peers. */
  mode: 'strict' | 'permissive';
  /** Workload port used for policy (`ports`, Linkerd Server port); default = the upstream URL's port. */
  workloadPort: number;
}

export interface OutboundListenerConfig {
  name: string;
  /** Plaintext listener on localhost that the app calls (HTTP/1.1, h2c, gRPC). */
  listen: HostPort;
  /** Destination sidecar, `https://host:port`. */
  target: string;
  /** The SPIFFE ID the destination must present; anything else is a 503, never plaintext. */
  expectIdentity: string;
  /** SNI / authority to send; default the target host. */
  serverName?: string;
}

export interface LimitsConfig {
  maxHeaderBytes: number;
  maxHeaderCount: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  /** Longest wait for the next request body byte while the body is being forwarded (slow body). */
  bodyTimeoutMs: number;
  idleTimeoutMs: number;
  tlsHandshakeTimeoutMs: number;
  h2MaxConcurrentStreams: number;
  /** RST_STREAMs per connection per second before the connection is closed (rapid reset). */
  h2MaxResetsPerSecond: number;
  maxConnections: number;
  upstreamConnectTimeoutMs: number;
  upstreamTimeoutMs: number;
  drainTimeoutMs: number;
  /** SIGTERM -> stop accepting: new connections are still served this long while /ready fails. */
  drainDelayMs?: number;
  maxJwtBytes: number;
}

export interface JwksConfig {
  cacheTtlMs: number;
  refreshIntervalMs: number;
  /** How long stale keys are served after refreshes start failing; then fail closed. */
  staleGraceMs: number;
  unknownKidMinIntervalMs: number;
  clockSkewSeconds: number;
}

export interface Config {
  /** Path of the config file, if any (relative paths inside it resolve against its directory). */
  configFile: string | undefined;
  mode: 'enforce' | 'audit';
  listeners: InboundListenerConfig[];
  outbound: OutboundListenerConfig[];
  admin: HostPort;
  /** Read-only /ready, /live, /metrics listener for probes on the pod IP; absent = none. */
  statusListen?: HostPort | undefined;
  /** Downward API directory of the workload facts (watched by run); absent = facts from keys. */
  workloadFrom?: string | undefined;
  policies: string[];
  /** Peer registry file (docs/cni.md); absent = no registry: label-based allows fail closed. */
  peersFile?: string | undefined;
  /** PEM CAs trusted for https JWKS fetches in addition to the system roots; absent = system roots only. */
  jwksCaFile?: string | undefined;
  tls: {
    certFile: string;
    keyFile: string;
    trustBundleFile: string;
    /** CRL files (PEM or DER); empty = no revocation checking. */
    crlFiles: string[];
    /** Peer trust domains accepted; default [workload.trustDomain, ...aliases]. */
    trustDomains: string[];
  };
  /** Workload facts + Istio/Linkerd options, exactly what the policy compiler takes. */
  compile: CompileOptions;
  /** Reject `%2F`/`%5C` in paths with 400 (Envoy REJECT_REQUEST); default false (Istio sidecar keeps them). */
  rejectEncodedSlashes: boolean;
  decisionLog: {
    /** `stdout`, `stderr`, `off`, or a file path. */
    destination: string;
    /** Events buffered before new ones are dropped (and counted). */
    maxBufferedEvents: number;
    /** What each event records for `portcullis replay`, and the headers whose values are never logged. */
    capture: CaptureSettings;
  };
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  /** Worker processes sharing the listeners (1 = this process serves alone). */
  concurrency: number;
  limits: LimitsConfig;
  jwks: JwksConfig;
}
