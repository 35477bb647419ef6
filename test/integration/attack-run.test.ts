// The attack run: every case of test/attacks/attacks.yaml (security.md §2 bypass classes, each with its
// source) against a real `portcullis run` over real mTLS with a recording HTTP/1.1 workload behind it, once
// under `compatibility: secure` (the default) and once under `istio-exact`. Each case asserts what the
// caller saw (status, reset, GOAWAY) AND what the workload recorded (nothing, or the exact request it must
// see). Prints `attack run (<setting>): N/M passed, B bypasses`. Alone:
//   npm run build && node --test dist/test/integration/attack-run.test.js
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as http2 from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { createHmac, createPublicKey } from 'node:crypto';
import { parse as parseYaml } from 'yaml';
import { SignJWT, importJWK, exportJWK, generateKeyPair, type JWK, type JWTHeaderParameters } from 'jose';
import { getText, mtlsAgent, startH1Upstream, startProxy, type ProxyUnderTest, type RecordingUpstream } from './harness.js';
import { frame, FrameReader, FRAME, FLAG, PREFACE, hpackLiterals, hpackString, rawH2cUpstream, type ParsedFrame } from '../helpers/h2-raw.js';
import { sharedTestPki, TEST_IDS, type IssuedCert } from '../helpers/pki.js';
import { makeCrl, opensslAvailable } from '../helpers/crl.js';
import { repoRoot } from '../helpers/paths.js';

// ---------------------------------------------------------------------------------------------------
// The cases file

type Compat = 'secure' | 'istio-exact';
const SETTINGS: readonly Compat[] = ['secure', 'istio-exact'];

interface UpstreamExpect {
  requests?: number;
  /** At most this many requests (floods cut before they all reach the workload); replaces `requests`. */
  maxRequests?: number;
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  absent?: string[];
  body?: string;
  rawExcludes?: string[];
  rawIncludes?: string[];
}
interface Expect {
  status?: number | 'none';
  statuses?: number[];
  reset?: string;
  goaway?: string;
  answered?: number;
  refused?: number;
  no100?: boolean;
  closed?: boolean;
  grpcStatus?: number;
  /** `none`: zero requests and zero bytes; `incomplete`: bytes may arrive, never a complete request. */
  upstream?: 'none' | 'incomplete' | UpstreamExpect;
}
interface FrameStep {
  headers?: { stream: number; fields: [string, string][]; end?: boolean; endHeaders?: boolean };
  continuation?: { stream: number; fields: [string, string][]; endHeaders?: boolean };
  data?: { stream: number; raw?: string; end?: boolean };
  rst?: { stream: number; code: string };
  rapidReset?: { count: number; path: string; batches?: number; gapMs?: number };
  openStreams?: { count: number; path: string };
  continuationFlood?: { count: number; path: string };
  flood?: { frame: 'PING' | 'SETTINGS' | 'EMPTY_DATA' | 'WINDOW_UPDATE'; count: number; path?: string };
  hpackBomb?: { size: number; refs: number };
  settingsAck?: boolean;
  wait?: number;
}
interface AttackCase {
  id: string;
  class: string;
  source: string;
  what: string;
  kind: 'h1' | 'h2' | 'h2-frames';
  setup?: string;
  cert?: string;
  raw?: string;
  send?: ({ raw: string } | { wait: number } | { close: 'end' | 'destroy' })[];
  request?: { headers: Record<string, string | string[]>; body?: string };
  frames?: FrameStep[];
  expect: Expect;
  'istio-exact'?: Expect;
  /** A documented limit: the case still runs and must show no bypass, but counts as not passed. */
  'known-limit'?: string;
  /** Written over the setup's policy file before the request (reload cases); the request waits for the reload's outcome. */
  policyFile?: string;
}
interface TokenSpec {
  key?: 'fixture' | 'rogue' | 'attacker' | 'attacker-ec' | 'none' | 'hs256-public-pem';
  alg?: string;
  header?: Record<string, unknown>;
  claims?: Record<string, unknown>;
  /** Pads the token with a filler claim to this many characters. */
  padTo?: number;
}
interface SetupSpec {
  policy: string;
  flags?: string[];
  /** The workload's protocol: HTTP/1.1 (default, every byte recorded) or h2c (requests recorded when complete). */
  upstream?: 'http' | 'h2c';
}
interface AttackFile { issuer: string; audience: string; setups: Record<string, SetupSpec>; tokens: Record<string, TokenSpec>; cases: AttackCase[] }

const FILE = join(repoRoot(), 'test', 'attacks', 'attacks.yaml');
const data = parseYaml(readFileSync(FILE, 'utf8')) as AttackFile;

// ---------------------------------------------------------------------------------------------------
// Request bytes: `raw` strings use the escapes of security.md §6; `{REPEAT:n:text}` repeats text
// (with `{i}` the index), `{TOKEN:name}` is a token from the `tokens` section.

function expandRepeats(s: string): string {
  return s.replace(/\{REPEAT:(\d+):((?:[^{}]|\{i\})*)\}/g, (_m, n: string, text: string) => {
    let out = '';
    for (let i = 0; i < Number(n); i++) out += text.replaceAll('{i}', String(i));
    return out;
  });
}

/** Decodes `\r \n \t \0 \xHH \\` (and drops real line breaks, which are layout only). */
export function decodeRaw(s: string): Buffer {
  const text = expandRepeats(s.replace(/\r?\n/g, ''));
  const out: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c !== '\\') { out.push(...Buffer.from(c, 'latin1')); continue; }
    const n = text[++i];
    if (n === 'r') out.push(13);
    else if (n === 'n') out.push(10);
    else if (n === 't') out.push(9);
    else if (n === '0') out.push(0);
    else if (n === '\\') out.push(92);
    else if (n === 'x') { out.push(parseInt(text.slice(i + 1, i + 3), 16)); i += 2; } else throw new Error(`unknown escape \\${n} in ${s.slice(0, 60)}`);
  }
  return Buffer.from(out);
}

// ---------------------------------------------------------------------------------------------------
// Tokens

const FIXTURE_JWK = JSON.parse(readFileSync(join(repoRoot(), 'test', 'fixtures', 'jwt', 'private.jwk.json'), 'utf8')) as JWK;
const ROGUE_JWK = JSON.parse(readFileSync(join(repoRoot(), 'test', 'fixtures', 'jwt', 'rogue-private.jwk.json'), 'utf8')) as JWK;
const JWKS = readFileSync(join(repoRoot(), 'test', 'fixtures', 'jwt', 'jwks.json'), 'utf8').replace(/\s+/g, ' ');
const b64u = (v: unknown): string => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

function claimValue(v: unknown, now: number): unknown {
  // `+1h`, `-30m`: seconds from now.
  if (typeof v === 'string') {
    const m = /^([+-])(\d+)([smh])$/.exec(v);
    if (m) return now + (m[1] === '-' ? -1 : 1) * Number(m[2]) * { s: 1, m: 60, h: 3600 }[m[3] as 's' | 'm' | 'h'];
  }
  return v;
}

async function mintTokens(specs: Record<string, TokenSpec>): Promise<Record<string, string>> {
  const now = Math.floor(Date.now() / 1000);
  const attacker = await generateKeyPair('RS256', { extractable: true });
  const attackerJwk = await exportJWK(attacker.publicKey);
  const attackerEc = await generateKeyPair('ES256');
  const out: Record<string, string> = {};
  for (const [name, spec] of Object.entries(specs)) {
    const claims: Record<string, unknown> = { iss: data.issuer, aud: data.audience, sub: 'attacker', iat: now };
    for (const [k, v] of Object.entries(spec.claims ?? {})) {
      if (v === null) delete claims[k]; else claims[k] = claimValue(v, now);
    }
    if (spec.padTo !== undefined) claims.pad = 'x'.repeat(Math.max(0, Math.ceil((spec.padTo * 3) / 4)));
    const alg = spec.alg ?? 'RS256';
    const header: Record<string, unknown> = { alg, kid: FIXTURE_JWK.kid, ...(spec.header ?? {}) };
    for (const [k, v] of Object.entries(header)) if (v === null) delete header[k];
    if (header.jwk === 'attacker') header.jwk = attackerJwk;
    const key = spec.key ?? 'fixture';
    if (key === 'none') { out[name] = `${b64u(header)}.${b64u(claims)}.`; continue; }
    if (key === 'hs256-public-pem') {
      // CVE-2016-10555 / CVE-2022-23541: the verifier's RSA public key used as an HMAC secret.
      const pem = createPublicKey({ key: { ...FIXTURE_JWK, d: undefined, p: undefined, q: undefined, dp: undefined, dq: undefined, qi: undefined } as import('node:crypto').JsonWebKey, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
      const input = `${b64u(header)}.${b64u(claims)}`;
      out[name] = `${input}.${createHmac('sha256', pem).update(input).digest('base64url')}`;
      continue;
    }
    const signingKey = key === 'attacker' ? attacker.privateKey : key === 'attacker-ec' ? attackerEc.privateKey : await importJWK(key === 'rogue' ? ROGUE_JWK : FIXTURE_JWK, 'RS256');
    // jose refuses to sign with unknown `crit` parameters unless told they are understood.
    const signer = new SignJWT(claims).setProtectedHeader(header as unknown as JWTHeaderParameters);
    out[name] = await signer.sign(signingKey, Array.isArray(header.crit) ? { crit: Object.fromEntries((header.crit as string[]).map((c) => [c, true])) } : undefined);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// HTTP/1.1 responses

interface H1Response { status: number; headers: Record<string, string> }

/** Parses consecutive responses; `complete` is false when the bytes end inside one. */
function parseResponses(buf: Buffer): { responses: H1Response[]; complete: boolean } {
  const responses: H1Response[] = [];
  let at = 0;
  while (at < buf.length) {
    const end = buf.indexOf('\r\n\r\n', at, 'latin1');
    if (end < 0) return { responses, complete: false };
    const lines = buf.subarray(at, end).toString('latin1').split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
    if (!m) return { responses, complete: false };
    const headers: Record<string, string> = {};
    for (const l of lines.slice(1)) { const i = l.indexOf(':'); if (i > 0) headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim(); }
    const status = Number(m[1]);
    responses.push({ status, headers });
    at = end + 4;
    if (status < 200 || status === 204 || status === 304) continue;
    if (headers['transfer-encoding']?.includes('chunked')) {
      for (;;) {
        const lineEnd = buf.indexOf('\r\n', at, 'latin1');
        if (lineEnd < 0) return { responses, complete: false };
        const size = parseInt(buf.subarray(at, lineEnd).toString('latin1'), 16);
        at = lineEnd + 2 + size + 2;
        if (size === 0) break;
        if (at > buf.length) return { responses, complete: false };
      }
    } else if (headers['content-length'] !== undefined) {
      at += Number(headers['content-length']);
      if (at > buf.length) return { responses, complete: false };
    } else {
      return { responses, complete: false };
    }
  }
  return { responses, complete: true };
}

interface Seen {
  statuses: number[];
  continued: boolean;
  closed: boolean;
  reset?: string;
  goaway?: string;
  answered?: number;
  refused?: number;
  /** HTTP/2: grpc-status from the response headers (trailers-only) or trailers. */
  grpcStatus?: number;
  detail: string;
}

/** Runs an h1 case: raw bytes over mTLS (ALPN http/1.1), optionally in timed pieces. */
function runH1(proxy: ProxyUnderTest, cert: IssuedCert | null, pieces: ({ bytes: Buffer } | { wait: number } | { close: 'end' | 'destroy' })[], expectedResponses: number): Promise<Seen> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    let closed = false;
    let finished = false;
    const socket = tls.connect({ host: '127.0.0.1', port: proxy.port, ca: proxy.caPem, ...(cert ? { cert: cert.chainPem, key: cert.keyPem } : {}), ALPNProtocols: ['http/1.1'] }, () => {
      void (async () => {
        for (const p of pieces) {
          // A caller that vanishes: a FIN (`end`) or an abrupt close (`destroy`); nothing more is read.
          if ('close' in p) { if (p.close === 'end') socket.end(); else finish(); continue; }
          if ('wait' in p) await new Promise((r) => setTimeout(r, p.wait));
          else if (!socket.destroyed) socket.write(p.bytes);
        }
        arm();
      })();
    });
    let writing = true;
    const finish = (): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      socket.destroy();
      const buf = Buffer.concat(chunks);
      const { responses } = parseResponses(buf);
      resolve({
        statuses: responses.filter((r) => r.status >= 200).map((r) => r.status),
        continued: responses.some((r) => r.status === 100),
        closed,
        detail: JSON.stringify(buf.subarray(0, 300).toString('latin1')),
      });
    };
    // Quiet periods: brief once the responses the case expects are complete (a keep-alive connection stays
    // open; a further response would still be seen, and the workload's bytes are judged separately), longer
    // after fewer complete responses, long before the first byte (a slow handshake or a timeout under test).
    const arm = (): void => {
      if (writing) { writing = false; }
      clearTimeout(timer);
      const buf = Buffer.concat(chunks);
      const parsed = parseResponses(buf);
      const finals = parsed.responses.filter((r) => r.status >= 200).length;
      const ms = buf.length === 0 ? 8000 : !parsed.complete ? 2000 : finals >= expectedResponses ? 40 : 300;
      timer = setTimeout(finish, ms);
    };
    socket.on('data', (c: Buffer) => { chunks.push(c); if (!writing) arm(); });
    socket.on('end', () => { closed = true; finish(); });
    socket.on('close', () => { closed = true; finish(); });
    socket.on('error', () => { closed = true; finish(); });
  });
}

// ---------------------------------------------------------------------------------------------------
// HTTP/2 through node:http2

function runH2(proxy: ProxyUnderTest, cert: IssuedCert | null, request: NonNullable<AttackCase['request']>): Promise<Seen> {
  return new Promise((resolve) => {
    const session = http2.connect(`https://127.0.0.1:${proxy.port}`, { ca: proxy.caPem, ...(cert ? { cert: cert.chainPem, key: cert.keyPem } : {}) });
    const seen: Seen = { statuses: [], continued: false, closed: false, detail: '' };
    let done = false;
    const finish = (): void => { if (done) return; done = true; clearTimeout(timer); session.destroy(); resolve(seen); };
    const timer = setTimeout(finish, 8000);
    session.on('error', (e) => { seen.detail += ` session error ${e.message}`; seen.closed = true; finish(); });
    session.on('goaway', (code) => { seen.goaway = codeName(code); });
    session.on('close', () => { seen.closed = true; finish(); });
    let req: http2.ClientHttp2Stream;
    try {
      req = session.request(request.headers as http2.OutgoingHttpHeaders, { endStream: request.body === undefined });
    } catch (e) {
      seen.detail = `client refused to send: ${(e as Error).message}`;
      finish();
      return;
    }
    req.on('response', (h) => {
      const s = Number(h[':status']);
      if (s >= 200) seen.statuses.push(s); else seen.continued = true;
      if (h['grpc-status'] !== undefined) seen.grpcStatus = Number(h['grpc-status']);
    });
    req.on('trailers', (t) => { if (t['grpc-status'] !== undefined) seen.grpcStatus = Number(t['grpc-status']); });
    req.on('data', () => undefined);
    req.on('end', finish);
    req.on('close', () => { if (req.rstCode !== undefined && req.rstCode !== 0 && seen.statuses.length === 0) seen.reset = codeName(req.rstCode); finish(); });
    req.on('error', (e) => { seen.detail += ` stream error ${e.message}`; });
    if (request.body !== undefined) req.end(decodeRaw(request.body));
  });
}

const H2_CODES = ['NO_ERROR', 'PROTOCOL_ERROR', 'INTERNAL_ERROR', 'FLOW_CONTROL_ERROR', 'SETTINGS_TIMEOUT', 'STREAM_CLOSED', 'FRAME_SIZE_ERROR', 'REFUSED_STREAM', 'CANCEL', 'COMPRESSION_ERROR', 'CONNECT_ERROR', 'ENHANCE_YOUR_CALM', 'INADEQUATE_SECURITY', 'HTTP_1_1_REQUIRED'];
const codeName = (c: number): string => H2_CODES[c] ?? `0x${c.toString(16)}`;
const codeNumber = (n: string): number => { const i = H2_CODES.indexOf(n); if (i < 0) throw new Error(`unknown h2 error code ${n}`); return i; };

// ---------------------------------------------------------------------------------------------------
// HTTP/2 frame scripts: literal HPACK (no Huffman, no indexing) out; responses decoded for `:status` only,
// with our SETTINGS_HEADER_TABLE_SIZE 0 so the server never refers to a dynamic table entry.

/** Literal header fields without indexing (escapes of `raw` strings decoded in names and values). */
function encodeFields(fields: [string, string][]): Buffer {
  return hpackLiterals(fields.map(([n, v]) => [decodeRaw(n), decodeRaw(v)]));
}
function requestFields(path: string, extra: [string, string][] = []): [string, string][] {
  return [[':method', 'GET'], [':scheme', 'https'], [':path', path], [':authority', 'api'], ...extra];
}

function readHpackInt(buf: Buffer, at: number, prefixBits: number): [number, number] {
  const max = (1 << prefixBits) - 1;
  let v = buf[at]! & max;
  at++;
  if (v < max) return [v, at];
  let m = 0;
  for (;;) { const b = buf[at++]!; v += (b & 0x7f) * 2 ** m; m += 7; if ((b & 0x80) === 0) break; }
  return [v, at];
}
/** Huffman (RFC 7541 Appendix B) for the digits a status code is made of. */
function huffmanDigits(bytes: Buffer): string {
  let bits = '';
  for (const b of bytes) bits += b.toString(2).padStart(8, '0');
  let out = '';
  let i = 0;
  while (bits.length - i >= 5) {
    const five = parseInt(bits.slice(i, i + 5), 2);
    if (five <= 2) { out += String(five); i += 5; continue; }
    if (bits.length - i < 6) break;
    const six = parseInt(bits.slice(i, i + 6), 2);
    if (six >= 25 && six <= 31) { out += String(six - 22); i += 6; continue; }
    break;
  }
  return out;
}
const STATIC_STATUS: Record<number, number> = { 8: 200, 9: 204, 10: 206, 11: 304, 12: 400, 13: 404, 14: 500 };
/** The `:status` of a response header block (the first field, as servers send it). */
function statusOf(block: Buffer): number {
  let at = 0;
  while (at < block.length && (block[at]! & 0xe0) === 0x20) [, at] = readHpackInt(block, at, 5); // table size updates
  const b = block[at]!;
  if ((b & 0x80) !== 0) { const [idx] = readHpackInt(block, at, 7); return STATIC_STATUS[idx] ?? 0; }
  const prefix = (b & 0xc0) === 0x40 ? 6 : 4;
  const [nameIdx, next] = readHpackInt(block, at, prefix);
  if (nameIdx < 8 || nameIdx > 14) return 0;
  const huff = (block[next]! & 0x80) !== 0;
  const [len, valueAt] = readHpackInt(block, next, 7);
  const value = block.subarray(valueAt, valueAt + len);
  return Number(huff ? huffmanDigits(value) : value.toString('latin1'));
}

function runFrames(proxy: ProxyUnderTest, cert: IssuedCert | null, steps: FrameStep[]): Promise<Seen> {
  return new Promise((resolve) => {
    const reader = new FrameReader();
    const streams = new Map<number, { status?: number; reset?: string; ended: boolean }>();
    const opened = new Set<number>();
    const seen: Seen = { statuses: [], continued: false, closed: false, detail: '' };
    const blocks = new Map<number, Buffer>();
    let serverSettingsSeen = false;
    let finished = false;
    const socket = tls.connect({ host: '127.0.0.1', port: proxy.port, ca: proxy.caPem, ...(cert ? { cert: cert.chainPem, key: cert.keyPem } : {}), ALPNProtocols: ['h2'] });
    const write = (b: Buffer): void => { if (!socket.destroyed) socket.write(b); };
    const stream = (id: number): { status?: number; reset?: string; ended: boolean } => {
      let s = streams.get(id);
      if (!s) { s = { ended: false }; streams.set(id, s); }
      return s;
    };
    // Streams the script reset itself expect no answer.
    const resetByUs = new Set<number>();
    const settled = (): boolean => [...opened].every((id) => { const s = streams.get(id); return resetByUs.has(id) || (s !== undefined && (s.reset !== undefined || s.ended)); });
    const finish = (): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      socket.destroy();
      const first = Math.min(...opened);
      const s = streams.get(first);
      if (s?.status !== undefined) seen.statuses.push(s.status);
      if (s?.reset !== undefined && s.status === undefined) seen.reset = s.reset;
      seen.answered = [...streams.values()].filter((x) => x.status !== undefined).length;
      seen.refused = [...streams.values()].filter((x) => x.reset === 'REFUSED_STREAM').length;
      // Outcomes by kind (`200`, `reset REFUSED_STREAM`, `ended without status`, `no answer`) over every opened stream.
      const kinds: Record<string, number> = {};
      for (const id of opened) {
        const x = streams.get(id);
        const kind = x?.status !== undefined ? String(x.status) : x?.reset !== undefined ? `reset ${x.reset}` : x?.ended ? 'ended without status' : 'no answer';
        kinds[kind] = (kinds[kind] ?? 0) + 1;
      }
      seen.detail = `streams ${JSON.stringify(kinds)} goaway ${seen.goaway ?? 'none'} closed ${seen.closed} after ${Date.now() - started} ms`;
      resolve(seen);
    };
    let timer = setTimeout(finish, 8000);
    const started = Date.now();
    let scriptDone = false;
    const maybeDone = (): void => {
      if (scriptDone && (seen.closed || (opened.size > 0 && settled()))) { clearTimeout(timer); timer = setTimeout(finish, 40); }
    };
    socket.on('data', (d: Buffer) => {
      const before = reader.frames.length;
      reader.push(d);
      for (const f of reader.frames.slice(before) as ParsedFrame[]) {
        if (f.type === FRAME.SETTINGS && (f.flags & FLAG.ACK) === 0) { serverSettingsSeen = true; write(frame(FRAME.SETTINGS, FLAG.ACK, 0)); }
        // The first GOAWAY names the reason; a later one (NO_ERROR from tearing the session down) does not.
        if (f.type === FRAME.GOAWAY) seen.goaway ??= codeName(f.payload.readUInt32BE(4));
        if (f.type === FRAME.RST_STREAM) stream(f.streamId).reset = codeName(f.payload.readUInt32BE(0));
        if (f.type === FRAME.HEADERS || f.type === 9) {
          let payload = f.payload;
          if (f.type === FRAME.HEADERS) {
            let at = 0;
            const padded = (f.flags & 0x8) !== 0;
            const pad = padded ? payload[at++]! : 0;
            if ((f.flags & 0x20) !== 0) at += 5;
            payload = payload.subarray(at, payload.length - pad);
          }
          const block = Buffer.concat([blocks.get(f.streamId) ?? Buffer.alloc(0), payload]);
          if ((f.flags & FLAG.END_HEADERS) !== 0) {
            blocks.delete(f.streamId);
            const s = stream(f.streamId);
            const status = statusOf(block);
            if (s.status === undefined && status >= 200) s.status = status;
          } else blocks.set(f.streamId, block);
          if ((f.flags & FLAG.END_STREAM) !== 0) stream(f.streamId).ended = true;
        }
        if (f.type === FRAME.DATA && (f.flags & FLAG.END_STREAM) !== 0) stream(f.streamId).ended = true;
      }
      // While frames keep coming (a busy machine answering 100 streams), wait up to 8 s more, 20 s in all.
      if (!finished && opened.size > 0 && !(scriptDone && settled())) { clearTimeout(timer); timer = setTimeout(finish, Math.max(0, Math.min(8000, started + 20_000 - Date.now()))); }
      maybeDone();
    });
    socket.on('close', () => { seen.closed = true; maybeDone(); finish(); });
    socket.on('error', () => { seen.closed = true; });
    socket.on('secureConnect', () => {
      // SETTINGS_HEADER_TABLE_SIZE 0, a large initial window so responses are never flow-blocked.
      const settings = Buffer.alloc(12);
      settings.writeUInt16BE(0x1, 0); settings.writeUInt32BE(0, 2);
      settings.writeUInt16BE(0x4, 6); settings.writeUInt32BE(1 << 20, 8);
      write(Buffer.concat([PREFACE, frame(FRAME.SETTINGS, 0, 0, settings)]));
      void (async () => {
        for (const step of steps) {
          if (step.wait !== undefined) await new Promise((r) => setTimeout(r, step.wait));
          if (step.settingsAck) {
            for (let i = 0; i < 100 && !serverSettingsSeen; i++) await new Promise((r) => setTimeout(r, 10));
            await new Promise((r) => setTimeout(r, 50));
          }
          if (step.headers) {
            const h = step.headers;
            opened.add(h.stream);
            // A block beyond the default SETTINGS_MAX_FRAME_SIZE goes out as HEADERS + CONTINUATION frames.
            const block = encodeFields(h.fields);
            const pieces: Buffer[] = [];
            for (let at = 0; at < block.length || pieces.length === 0; at += 16_384) pieces.push(block.subarray(at, at + 16_384));
            pieces.forEach((piece, i) => {
              const last = i === pieces.length - 1;
              const endHeaders = last && (h.endHeaders ?? true) ? FLAG.END_HEADERS : 0;
              write(i === 0 ? frame(FRAME.HEADERS, (h.end ?? true ? FLAG.END_STREAM : 0) | endHeaders, h.stream, piece) : frame(9, endHeaders, h.stream, piece));
            });
          }
          if (step.continuation) write(frame(9, step.continuation.endHeaders ?? true ? FLAG.END_HEADERS : 0, step.continuation.stream, encodeFields(step.continuation.fields)));
          if (step.data) write(frame(FRAME.DATA, step.data.end ?? true ? FLAG.END_STREAM : 0, step.data.stream, decodeRaw(step.data.raw ?? '')));
          if (step.rst) { const p = Buffer.alloc(4); p.writeUInt32BE(codeNumber(step.rst.code)); write(frame(FRAME.RST_STREAM, 0, step.rst.stream, p)); resetByUs.add(step.rst.stream); }
          if (step.openStreams) {
            const all: Buffer[] = [];
            for (let i = 0; i < step.openStreams.count; i++) { opened.add(2 * i + 1); all.push(frame(FRAME.HEADERS, FLAG.END_STREAM | FLAG.END_HEADERS, 2 * i + 1, encodeFields(requestFields(step.openStreams.path)))); }
            write(Buffer.concat(all));
          }
          if (step.rapidReset) {
            // `count` HEADERS+RST_STREAM pairs per write, `batches` writes `gapMs` apart.
            const cancel = Buffer.alloc(4); cancel.writeUInt32BE(8);
            const r = step.rapidReset;
            for (let b = 0, id = 1; b < (r.batches ?? 1) && !socket.destroyed; b++) {
              const all: Buffer[] = [];
              for (let i = 0; i < r.count; i++, id += 2) {
                resetByUs.add(id);
                all.push(frame(FRAME.HEADERS, FLAG.END_STREAM | FLAG.END_HEADERS, id, encodeFields(requestFields(r.path))), frame(FRAME.RST_STREAM, 0, id, cancel));
              }
              write(Buffer.concat(all));
              await new Promise((res) => setTimeout(res, r.gapMs ?? 10));
            }
            await new Promise((res) => setTimeout(res, 300));
          }
          if (step.continuationFlood) {
            opened.add(1);
            const all: Buffer[] = [frame(FRAME.HEADERS, FLAG.END_STREAM, 1, encodeFields(requestFields(step.continuationFlood.path)))];
            for (let i = 0; i < step.continuationFlood.count; i++) all.push(frame(9, 0, 1, encodeFields([[`x-flood-${i}`, 'a'.repeat(64)]])));
            write(Buffer.concat(all));
          }
          if (step.hpackBomb) {
            // One large entry added to the dynamic table, then referenced over and over (CVE-2016-6581).
            opened.add(1);
            const add = Buffer.concat([Buffer.from([0x40]), hpackString(Buffer.from('x-bomb')), hpackString(Buffer.alloc(step.hpackBomb.size, 0x61))]);
            const refs = Buffer.alloc(step.hpackBomb.refs, 0xbe); // indexed field 62: the newest dynamic entry
            write(frame(FRAME.HEADERS, FLAG.END_STREAM | FLAG.END_HEADERS, 1, Buffer.concat([encodeFields(requestFields('/public/bomb')), add, refs])));
          }
          if (step.flood) {
            const all: Buffer[] = [];
            const f = step.flood;
            if (f.frame === 'EMPTY_DATA') { opened.add(1); all.push(frame(FRAME.HEADERS, FLAG.END_HEADERS, 1, encodeFields([[':method', 'POST'], [':scheme', 'https'], [':path', f.path ?? '/public/a'], [':authority', 'api']]))); }
            for (let i = 0; i < f.count; i++) {
              if (f.frame === 'PING') all.push(frame(FRAME.PING, 0, 0, Buffer.alloc(8, i % 256)));
              else if (f.frame === 'SETTINGS') all.push(frame(FRAME.SETTINGS, 0, 0));
              else if (f.frame === 'EMPTY_DATA') all.push(frame(FRAME.DATA, 0, 1));
              else { const p = Buffer.alloc(4); p.writeUInt32BE(1); all.push(frame(FRAME.WINDOW_UPDATE, 0, 0, p)); }
            }
            write(Buffer.concat(all));
          }
        }
        scriptDone = true;
        if (opened.size === 0) { clearTimeout(timer); timer = setTimeout(finish, 1000); }
        maybeDone();
      })();
    });
  });
}

// ---------------------------------------------------------------------------------------------------
// Judging

interface Outcome { passed: boolean; bypass: boolean; problems: string[] }

function judge(c: AttackCase, want: Expect, seen: Seen, upstream: { requests: RecordingUpstreamRequest[]; bytes: number; raw: Buffer }): Outcome {
  const problems: string[] = [];
  let bypass = false;
  const firstStatus: number | 'none' = seen.statuses[0] ?? 'none';
  if (want.status !== undefined && firstStatus !== want.status) problems.push(`status ${firstStatus}, want ${want.status}`);
  if (want.statuses !== undefined && JSON.stringify(seen.statuses) !== JSON.stringify(want.statuses)) problems.push(`statuses ${JSON.stringify(seen.statuses)}, want ${JSON.stringify(want.statuses)}`);
  if (want.reset !== undefined && !(seen.reset === want.reset || (want.reset === 'any' && seen.reset !== undefined))) problems.push(`reset ${seen.reset ?? 'none'}, want ${want.reset}`);
  if (want.goaway !== undefined && !((seen.goaway ?? 'none') === want.goaway || (want.goaway === 'any' && seen.goaway !== undefined))) problems.push(`goaway ${seen.goaway ?? 'none'}, want ${want.goaway}`);
  if (want.answered !== undefined && seen.answered !== want.answered) problems.push(`answered ${seen.answered}, want ${want.answered}`);
  if (want.refused !== undefined && seen.refused !== want.refused) problems.push(`refused ${seen.refused}, want ${want.refused}`);
  if (want.no100 && seen.continued) problems.push('a 100 Continue was sent');
  if (want.grpcStatus !== undefined && seen.grpcStatus !== want.grpcStatus) problems.push(`grpc-status ${seen.grpcStatus ?? 'none'}, want ${want.grpcStatus}`);
  if (want.closed !== undefined && seen.closed !== want.closed) problems.push(`connection closed: ${seen.closed}, want ${want.closed}`);
  const up = want.upstream;
  if (up === 'none') {
    if (upstream.requests.length > 0 || upstream.bytes > 0) { bypass = true; problems.push(`BYPASS: the workload saw ${upstream.requests.length} request(s), ${upstream.bytes} bytes: ${JSON.stringify(upstream.raw.subarray(0, 200).toString('latin1'))}`); }
  } else if (up === 'incomplete') {
    if (upstream.requests.length > 0) { bypass = true; problems.push(`BYPASS: the workload saw a complete request ${JSON.stringify(upstream.requests[0])}`); }
  } else if (up !== undefined) {
    if (up.maxRequests !== undefined) {
      if (upstream.requests.length > up.maxRequests) { bypass = true; problems.push(`BYPASS: the workload saw ${upstream.requests.length} requests, want at most ${up.maxRequests}`); }
    } else {
      const n = up.requests ?? 1;
      if (upstream.requests.length !== n) { if (upstream.requests.length > n) bypass = true; problems.push(`${bypass ? 'BYPASS: ' : ''}the workload saw ${upstream.requests.length} requests, want ${n}`); }
    }
    const r = upstream.requests[0];
    if (r) {
      if (up.method !== undefined && r.method !== up.method) problems.push(`upstream method ${r.method}, want ${up.method}`);
      if (up.path !== undefined && r.url !== up.path) { bypass = true; problems.push(`BYPASS: upstream path ${r.url}, want ${up.path}`); }
      for (const [name, value] of Object.entries(up.headers ?? {})) {
        const got = r.headers[name];
        const text = Array.isArray(got) ? got.join(', ') : got;
        const ok = value.startsWith('~') ? text !== undefined && new RegExp(value.slice(1)).test(text) : text === value;
        if (!ok) { bypass = true; problems.push(`BYPASS: upstream header ${name}: ${String(text)}, want ${value}`); }
      }
      for (const name of up.absent ?? []) {
        if (r.rawHeaders.some((h, i) => i % 2 === 0 && h.toLowerCase() === name.toLowerCase())) { bypass = true; problems.push(`BYPASS: upstream received ${name}`); }
      }
      if (up.body !== undefined && r.body.toString('latin1') !== decodeRaw(up.body).toString('latin1')) problems.push(`upstream body ${JSON.stringify(r.body.toString('latin1').slice(0, 80))}, want ${JSON.stringify(up.body)}`);
    }
    const rawText = upstream.raw.toString('latin1');
    for (const s of up.rawExcludes ?? []) if (rawText.includes(decodeRaw(s).toString('latin1'))) { bypass = true; problems.push(`BYPASS: the workload's bytes contain ${JSON.stringify(s)}`); }
    for (const s of up.rawIncludes ?? []) if (!rawText.includes(decodeRaw(s).toString('latin1'))) problems.push(`the workload's bytes lack ${JSON.stringify(s)}`);
  }
  if (problems.length > 0) problems.push(`(${c.kind} saw: ${seen.detail})`);
  return { passed: problems.length === 0, bypass, problems };
}
type RecordingUpstreamRequest = RecordingUpstream['requests'][number];

// ---------------------------------------------------------------------------------------------------
// Validation of the file itself

function validateFile(): void {
  const ids = new Set<string>();
  for (const c of data.cases) {
    assert.ok(typeof c.id === 'string' && !ids.has(c.id), `case id ${c.id} missing or repeated`);
    ids.add(c.id);
    for (const field of ['class', 'source', 'what', 'kind', 'expect'] as const) assert.ok(c[field] !== undefined, `${c.id}: ${field} is required`);
    assert.match(c.class, /^2\.(\d|1[0-2]) /, `${c.id}: class names a security.md §2 section`);
    assert.ok(c.setup === undefined || data.setups[c.setup], `${c.id}: unknown setup ${c.setup}`);
    const body = c.kind === 'h1' ? c.raw ?? c.send : c.kind === 'h2' ? c.request : c.frames;
    assert.ok(body !== undefined, `${c.id}: a ${c.kind} case needs ${c.kind === 'h1' ? 'raw or send' : c.kind === 'h2' ? 'request' : 'frames'}`);
    for (const e of [c.expect, c['istio-exact']]) if (e) assert.ok(e.upstream !== undefined, `${c.id}: every expectation says what the workload may see`);
    if (c.setup !== undefined && data.setups[c.setup]?.upstream === 'h2c') for (const e of [c.expect, c['istio-exact']]) if (e) assert.ok(typeof e.upstream === 'string', `${c.id}: an h2c workload is judged on completeness only (none / incomplete)`);
  }
}

/**
 * An h2c workload judged frame by frame: a request counts as complete only when END_STREAM arrived (a
 * node:http2 server also ends a stream's body when the stream is reset, which would hide the difference).
 */
async function frameRecordingH2c(): Promise<RecordingUpstream> {
  const up = await rawH2cUpstream();
  const requests: RecordingUpstreamRequest[] = [];
  return {
    port: Number(new URL(up.url.replace('h2c:', 'http:')).port),
    url: up.url,
    get requests() {
      while (requests.length < up.completed.length) requests.push({ method: '', url: `stream ${up.completed[requests.length]}`, headers: {}, rawHeaders: [], body: Buffer.alloc(0), httpVersion: '2.0' });
      return requests;
    },
    get bytes() { return up.bytes; },
    raw: () => Buffer.alloc(0),
    close: () => up.close(),
  };
}

// ---------------------------------------------------------------------------------------------------
// Reload cases: a new policy file, then wait (bounded) until the store has judged it.

async function reloadCount(proxy: ProxyUnderTest): Promise<number> {
  const text = await proxy.metrics();
  let n = 0;
  for (const m of text.matchAll(/^portcullis_policy_reload_total\{[^}]*\} (\d+)/gm)) n += Number(m[1]);
  return n;
}
async function rewritePolicy(proxy: ProxyUnderTest, content: string): Promise<void> {
  const before = await reloadCount(proxy);
  writeFileSync(proxy.policyFile, content);
  for (let i = 0; i < 100 && (await reloadCount(proxy)) === before; i++) await new Promise((r) => setTimeout(r, 50));
}

// ---------------------------------------------------------------------------------------------------
// The run

const tally: Record<Compat, { cases: number; passed: number; bypasses: number; knownLimits: string[]; failed: string[] }> = {
  secure: { cases: 0, passed: 0, bypasses: 0, knownLimits: [], failed: [] },
  'istio-exact': { cases: 0, passed: 0, bypasses: 0, knownLimits: [], failed: [] },
};

describe('attack run: the cases file', () => {
  it(`test/attacks/attacks.yaml: ${data.cases.length} cases, each with id, class, source, request and expectations`, () => {
    validateFile();
    assert.ok(data.cases.length >= 121, `at least 121 cases (has ${data.cases.length})`);
  });
});

const { pki, svids } = sharedTestPki();
const extraCerts: Record<string, IssuedCert> = {};
const revokedIntermediate = pki.intermediate();
extraCerts.revoked = pki.issue({ spiffeId: TEST_IDS.frontend });
extraCerts.viaRevokedIntermediate = revokedIntermediate.issue({ spiffeId: TEST_IDS.frontend });
function certNamed(name: string | undefined): IssuedCert | null {
  if (name === 'none') return null;
  const c = (svids as unknown as Record<string, IssuedCert>)[name ?? 'frontend'] ?? extraCerts[name ?? ''];
  assert.ok(c, `unknown certificate ${name}`);
  return c;
}

/** Cases in flight at once per setting (each against its own proxy and workload). */
const LANES = 3;

type Running = { proxy: ProxyUnderTest; upstream: RecordingUpstream; agent: ReturnType<typeof mtlsAgent> };

// Both settings run side by side: each case is sent to the `secure` and the `istio-exact` proxy at once
// (separate proxies, separate recording workloads); a run that mostly waits takes a fraction of the time.
describe('attack run under compatibility: secure and istio-exact', () => {
  const running = new Map<string, Running>();
  let tokens: Record<string, string> = {};
  let crlDir = '';
  let crlFlags: string[] = [];
  before(async () => {
    tokens = await mintTokens(data.tokens);
    crlDir = mkdtempSync(join(tmpdir(), 'portcullis-attack-crl-'));
    if (opensslAvailable()) {
      const file = join(crlDir, 'revoked.crl.pem');
      writeFileSync(file, makeCrl(pki, [extraCerts.revoked!.certPem, revokedIntermediate.caCertPem]));
      crlFlags = ['--crl', file];
    }
  });
  after(async () => {
    for (const { proxy, upstream, agent } of running.values()) { await agent.close(); await proxy.stop(); await upstream.close(); }
    rmSync(crlDir, { recursive: true, force: true });
  });
  async function setup(compat: Compat, name: string, lane: number): Promise<Running> {
    const key = `${compat}/${name}/${lane}`;
    let s = running.get(key);
    if (!s) {
      const spec = data.setups[name]!;
      // The recorder accepts any head the proxy may forward (Node's own limit is 16 KiB).
      const upstream = spec.upstream === 'h2c' ? await frameRecordingH2c() : await startH1Upstream(undefined, { maxHeaderSize: 1 << 20 });
      const policy = spec.policy.replaceAll('{ISSUER}', data.issuer).replaceAll('{AUDIENCE}', data.audience).replaceAll('{JWKS}', JWKS);
      const proxy = await startProxy({ policy, upstream: upstream.url, flags: ['--compatibility', compat, ...crlFlags, ...(spec.flags ?? [])] });
      s = { proxy, upstream, agent: mtlsAgent(proxy, svids.frontend) };
      running.set(key, s);
    }
    return s;
  }
  const fill = (s: string): string => s.replace(/\{TOKEN:([a-z0-9-]+)\}/g, (_m, n: string) => { const t = tokens[n]; assert.ok(t, `unknown token ${n}`); return t; });

  /** Runs one case against one setting's proxy; returns the problems (empty when it passed). */
  async function runCase(c: AttackCase, compat: Compat, lane: number): Promise<string[]> {
    const declared = (compat === 'istio-exact' ? c['istio-exact'] : undefined) ?? c.expect;
    const want = JSON.parse(fill(JSON.stringify(declared))) as Expect;
    const { proxy, upstream, agent } = await setup(compat, c.setup ?? 'main', lane);
    if (c.policyFile !== undefined) await rewritePolicy(proxy, c.policyFile);
    // Let the previous case's connections wind down so their bytes are not counted here.
    await new Promise((r) => setTimeout(r, 10));
    const mark = { requests: upstream.requests.length, bytes: upstream.bytes, raw: upstream.raw().length };
    const cert = certNamed(c.cert);
    let seen: Seen;
    if (c.kind === 'h1') {
      const pieces = c.raw !== undefined ? [{ bytes: decodeRaw(fill(c.raw)) }] : c.send!.map((p) => ('raw' in p ? { bytes: decodeRaw(fill(p.raw)) } : p));
      seen = await runH1(proxy, cert, pieces, want.statuses?.length ?? 1);
    } else if (c.kind === 'h2') {
      const headers = Object.fromEntries(Object.entries(c.request!.headers).map(([k, v]) => [k, Array.isArray(v) ? v.map((x) => expandRepeats(fill(x))) : expandRepeats(fill(v))]));
      seen = await runH2(proxy, cert, { headers, ...(c.request!.body !== undefined ? { body: c.request!.body } : {}) });
    } else {
      seen = await runFrames(proxy, cert, JSON.parse(fill(JSON.stringify(c.frames))) as FrameStep[]);
    }
    // The workload's view: wait (bounded) for a forwarded request to complete before judging.
    const expectsRequest = typeof want.upstream === 'object' && want.upstream.maxRequests === undefined;
    for (let i = 0; i < (expectsRequest ? 50 : 2) && (expectsRequest ? upstream.requests.length - mark.requests < ((want.upstream as UpstreamExpect).requests ?? 1) : true); i++) await new Promise((r) => setTimeout(r, 20));
    const view = { requests: upstream.requests.slice(mark.requests), bytes: upstream.bytes - mark.bytes, raw: upstream.raw().subarray(mark.raw) };
    const outcome = judge(c, want, seen, view);
    const t = tally[compat];
    t.cases++;
    if (outcome.bypass) t.bypasses++;
    const problems = outcome.problems.map((p) => `${compat}: ${p}`);
    // After every case the proxy still answers an ordinary request (no crash, no wedged listener).
    const health = await getText(`${proxy.origin}/public/health`, agent).catch((e: Error) => ({ status: e.message }));
    if (health.status !== 200) problems.push(`${compat}: the proxy no longer answers after the case (${health.status})`);
    if (c['known-limit'] !== undefined) {
      t.knownLimits.push(`${c.id} (${outcome.passed ? 'now passes: drop the known-limit mark' : c['known-limit']})`);
      return outcome.bypass || health.status !== 200 ? problems : [];
    }
    if (problems.length > 0) t.failed.push(c.id); else t.passed++;
    return problems;
  }

  // Lanes: cases run one at a time per lane, lanes side by side, each lane with its own proxies and
  // recording workloads (so every byte a workload records belongs to the one case running against it).
  // The `main` cases are dealt over the lanes; every other setup keeps one lane, so the reload cases see
  // each other's policy files in order.
  const results = new Map<string, string[]>();
  before(async () => {
    const lanes: AttackCase[][] = Array.from({ length: LANES }, () => []);
    const setupNames = Object.keys(data.setups).filter((n) => n !== 'main');
    let next = 0;
    for (const c of data.cases) {
      const lane = c.setup === undefined || c.setup === 'main' ? next++ % LANES : setupNames.indexOf(c.setup) % LANES;
      lanes[lane]!.push(c);
    }
    await Promise.all(lanes.map(async (cases, lane) => {
      for (const c of cases) {
        const problems = (await Promise.all(SETTINGS.map((compat) => runCase(c, compat, lane).catch((e: Error) => [`${compat}: the case could not run: ${e.message}`])))).flat();
        results.set(c.id, problems);
      }
    }));
  });
  for (const c of data.cases) {
    it(`${c.id} [${c.class.split(' ')[0]}] ${c.what}`, () => {
      const problems = results.get(c.id);
      assert.ok(problems, `${c.id} did not run`);
      assert.deepEqual(problems, [], `${c.id}: ${problems.join('; ')}`);
    });
  }
});

after(() => {
  for (const compat of SETTINGS) {
    const t = tally[compat];
    process.stdout.write(`# attack run (${compat}): ${t.passed}/${data.cases.length} passed, ${t.bypasses} bypasses` +
      `${t.knownLimits.length ? `; known limits: ${t.knownLimits.join(', ')}` : ''}${t.failed.length ? `; failed: ${t.failed.join(', ')}` : ''}\n`);
  }
});
