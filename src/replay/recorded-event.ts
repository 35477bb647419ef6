// Owns reading one decision-log line for replay: a v1 event with replayable capture becomes the request
// `portcullis check` would decide, the recorded token facts and the recorded outcome; anything else says why not.

import type { CheckRequest } from '../check/decide.js';
import type { RecordedToken } from './recorded-jwt.js';
import { JwtMessage } from '../jwt/token.js';

/** A decision as replay compares it; `reason` null means "not known" (compared as equal to any reason). */
export interface Outcome {
  verdict: string;
  reason: string | null;
  dialect: string | null;
  policy: { kind: string; namespace: string; name: string } | null;
  rule: string | null;
  authorization: string | null;
}

/** One recorded request, ready to be decided again. */
export interface RecordedRequest {
  request: CheckRequest;
  token: RecordedToken;
  recorded: Outcome;
  decisionId: string;
  time: string;
  revision: string;
}

export type ReadLine =
  | { kind: 'request'; value: RecordedRequest }
  /** A well-formed event that cannot be decided again; `why` is a stable phrase (counted per phrase). */
  | { kind: 'not_replayable'; why: string }
  | { kind: 'malformed'; error: string };

/** The newest decision-event schema this Portcullis reads. */
export const READABLE_VERSION = 1;

export const notReplayable = {
  noCapture: 'no replay attributes: written by a Portcullis before replayable capture, or with decisionLogCapture: minimal',
  tokenUnverified: 'the candidate reads a token the recording sidecar never verified (its claims were not recorded)',
} as const;

class Malformed extends Error {}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function str(o: Record<string, unknown>, key: string, where: string): string {
  const v = o[key];
  if (typeof v !== 'string') throw new Malformed(`${where}${key} is not a string`);
  return v;
}
function optStr(o: Record<string, unknown>, key: string, where: string): string | undefined {
  return o[key] === undefined ? undefined : str(o, key, where);
}
function strOrNull(o: Record<string, unknown>, key: string, where: string): string | null {
  return o[key] === null ? null : str(o, key, where);
}
function obj(o: Record<string, unknown>, key: string, where: string): Record<string, unknown> {
  const v = o[key];
  if (!isObject(v)) throw new Malformed(`${where}${key} is not an object`);
  return v;
}

function policyOf(v: unknown): Outcome['policy'] {
  if (v === null) return null;
  if (!isObject(v) || typeof v['kind'] !== 'string' || typeof v['namespace'] !== 'string' || typeof v['name'] !== 'string') throw new Malformed('policy is not {kind, namespace, name} or null');
  return { kind: v['kind'], namespace: v['namespace'], name: v['name'] };
}

function headersOf(v: unknown): Record<string, string | string[]> {
  if (!isObject(v)) throw new Malformed('request.headers is not an object');
  for (const name in v) {
    const value = v[name];
    if (typeof value !== 'string' && !(Array.isArray(value) && value.every((x) => typeof x === 'string'))) throw new Malformed(`request.headers.${name} is not a string or a list of strings`);
  }
  return v as Record<string, string | string[]>;
}

/** The recorded outcome; a local rate limit is traffic, not policy: it counts as the allow the engine gave. */
function recordedOutcome(e: Record<string, unknown>): Outcome {
  const verdict = str(e, 'verdict', '');
  const rateLimited = verdict === 'rate_limited';
  return {
    verdict: rateLimited ? 'allow' : verdict,
    reason: rateLimited ? null : str(e, 'reason', ''),
    dialect: strOrNull(e, 'dialect', ''),
    policy: policyOf(e['policy']),
    rule: strOrNull(e, 'rule', ''),
    authorization: strOrNull(e, 'authorization', ''),
  };
}

function recordedToken(e: Record<string, unknown>, outcome: Outcome): RecordedToken {
  const jwt = e['jwt'];
  if (jwt !== null && jwt !== undefined) {
    if (!isObject(jwt)) throw new Malformed('jwt is not an object or null');
    const claims = jwt['claims'];
    if (!isObject(claims)) throw new Malformed('jwt.claims is missing (a replayable event records the verified claims)');
    return { kind: 'verified', claims };
  }
  if (outcome.verdict === 'unauthenticated') {
    const status = e['status'] === 403 ? 403 : 401;
    return { kind: 'failed', reason: outcome.reason ?? 'jwt_invalid', status, message: status === 403 ? JwtMessage.audienceNotAllowed : JwtMessage.verificationFails };
  }
  return { kind: 'none' };
}

/** Parses one line; never throws. */
export function readRecordedLine(line: string): ReadLine {
  let e: unknown;
  try { e = JSON.parse(line); } catch (err) { return { kind: 'malformed', error: `not JSON (${(err as Error).message})` }; }
  if (!isObject(e)) return { kind: 'malformed', error: 'not a JSON object' };
  const v = e['v'];
  if (v === undefined) return { kind: 'malformed', error: 'not a decision event (no "v" field)' };
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) return { kind: 'malformed', error: `"v" is ${JSON.stringify(v)}, not a schema version` };
  if (v > READABLE_VERSION) return { kind: 'malformed', error: `schema version ${v} is newer than this Portcullis reads (${READABLE_VERSION}); replay it with a newer Portcullis` };
  if (e['capture'] !== 'replayable') return { kind: 'not_replayable', why: notReplayable.noCapture };
  try {
    const peer = obj(e, 'peer', '');
    const r = obj(e, 'request', '');
    const wireProtocol = str(r, 'protocol', 'request.');
    const protocol = wireProtocol === 'grpc' ? 'grpc' : wireProtocol === 'tcp' ? 'tcp' : wireProtocol === 'http1' || wireProtocol === 'http2' ? 'http' : undefined;
    if (!protocol) throw new Malformed(`request.protocol ${JSON.stringify(wireProtocol)} is not http1, http2, grpc or tcp`);
    const port = r['port'];
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) throw new Malformed('request.port is not a port number');
    const spiffeId = peer['spiffe_id'] === null ? null : str(peer, 'spiffe_id', 'peer.');
    const sourceIp = str(peer, 'ip', 'peer.');
    const request: CheckRequest = { protocol, port, peer: spiffeId, sourceIp, remoteIp: optStr(peer, 'remote_ip', 'peer.') ?? sourceIp };
    const destinationIp = optStr(r, 'destination_ip', 'request.');
    if (destinationIp !== undefined) request.destinationIp = destinationIp;
    const sni = optStr(r, 'sni', 'request.');
    if (sni !== undefined) request.sni = sni;
    if (protocol !== 'tcp') {
      request.method = str(r, 'method', 'request.');
      const keys = r['query_keys'];
      if (!Array.isArray(keys) || !keys.every((k) => typeof k === 'string')) throw new Malformed('request.query_keys is not a list of strings');
      // Parameter values were never logged: each name comes back without one.
      request.path = (optStr(r, 'raw_path', 'request.') ?? str(r, 'path', 'request.')) + (keys.length > 0 ? `?${(keys as string[]).join('&')}` : '');
      request.host = str(r, 'authority', 'request.');
      request.headers = headersOf(r['headers']);
    }
    const recorded = recordedOutcome(e);
    return {
      kind: 'request',
      value: {
        request, recorded, token: recordedToken(e, recorded),
        decisionId: typeof e['decision_id'] === 'string' ? e['decision_id'] : '',
        time: typeof e['time'] === 'string' ? e['time'] : '',
        revision: typeof e['policy_revision'] === 'string' ? e['policy_revision'] : '',
      },
    };
  } catch (err) {
    if (err instanceof Malformed) return { kind: 'malformed', error: err.message };
    throw err;
  }
}
