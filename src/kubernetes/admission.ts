// Owns the admission.k8s.io/v1 AdmissionReview exchange for pod CREATE: request in, response out (uid echoed,
// patchType JSONPatch, base64 patch) using the same injectPod as `portcullis inject`. Pure, no sockets.

import { injectPod } from './injector.js';
import type { InjectorOptions } from './sidecar.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  patchType?: 'JSONPatch';
  /** base64 of the JSON Patch document. */
  patch?: string;
  status?: { code: number; message: string; reason?: string };
  warnings?: string[];
}

export interface AdmissionReviewOut {
  apiVersion: 'admission.k8s.io/v1';
  kind: 'AdmissionReview';
  response: AdmissionResponse;
}

export type ReviewResult =
  | { ok: true; review: AdmissionReviewOut; outcome: 'injected' | 'skipped' | 'refused' | 'ignored'; detail: string }
  /** Not an AdmissionReview we can answer: an HTTP 400 with this message. */
  | { ok: false; error: string };

/** Warnings are shown by kubectl; the API server limits each to 120 characters. */
function clip(s: string): string {
  return s.length <= 120 ? s : s.slice(0, 117) + '...';
}

export function reviewAdmission(body: unknown, options: InjectorOptions): ReviewResult {
  if (!isObj(body)) return { ok: false, error: 'body is not a JSON object' };
  if (body.apiVersion !== 'admission.k8s.io/v1' || body.kind !== 'AdmissionReview') {
    return { ok: false, error: `expected apiVersion admission.k8s.io/v1, kind AdmissionReview (set admissionReviewVersions: ["v1"])` };
  }
  const request = body.request;
  if (!isObj(request) || typeof request.uid !== 'string' || request.uid === '') return { ok: false, error: 'request.uid is missing' };
  const uid = request.uid;
  const answer = (response: Omit<AdmissionResponse, 'uid'>, outcome: 'injected' | 'skipped' | 'refused' | 'ignored', detail: string): ReviewResult => ({
    ok: true,
    outcome,
    detail,
    review: { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid, ...response } },
  });

  const kind = isObj(request.kind) ? request.kind : {};
  const resource = isObj(request.resource) ? request.resource : {};
  const isPod = kind.group === '' && kind.kind === 'Pod' && resource.resource === 'pods' && (request.subResource === undefined || request.subResource === '');
  // Anything else that reaches us (a misconfigured rule) passes unchanged: the webhook only adds sidecars.
  if (!isPod || request.operation !== 'CREATE') return answer({ allowed: true }, 'ignored', `${String(request.operation)} ${String(kind.kind)}`);

  const result = injectPod(request.object, options);
  const ns = typeof request.namespace === 'string' ? request.namespace : '';
  const meta = isObj(request.object) && isObj(request.object.metadata) ? request.object.metadata : {};
  const name = typeof meta.name === 'string' && meta.name !== '' ? meta.name : typeof meta.generateName === 'string' ? `${meta.generateName}*` : '<unnamed>';
  const who = `pod ${ns}/${name}`;
  if (result.outcome === 'skipped') return answer({ allowed: true }, 'skipped', `${who}: ${result.reason}`);
  if (result.outcome === 'refused') {
    return answer({ allowed: false, status: { code: 400, reason: 'BadRequest', message: `portcullis: ${result.message}` } }, 'refused', `${who}: ${result.message}`);
  }
  const response: Omit<AdmissionResponse, 'uid'> = {
    allowed: true,
    patchType: 'JSONPatch',
    patch: Buffer.from(JSON.stringify(result.patch), 'utf8').toString('base64'),
  };
  if (result.warnings.length > 0) response.warnings = result.warnings.map((w) => clip(`portcullis: ${w}`));
  return answer(response, 'injected', `${who}: sidecar added`);
}
