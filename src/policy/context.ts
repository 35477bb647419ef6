// Owns buildRequestContext: parse the request target once, normalize the path (Istio's modes),
// canonicalize the authority, lower-case and join headers; malformed input becomes a bad request.
// PLACEHOLDER until the engine lands.
import type { ContextResult, RequestInput } from './context-types.js';
import type { PathNormalization } from './ir.js';

export interface ContextOptions {
  pathNormalization: PathNormalization;
  rejectEncodedSlashes: boolean;
}

export function buildRequestContext(_input: RequestInput, _options: ContextOptions): ContextResult {
  return { ok: false, reason: 'bad_path', detail: 'engine unavailable' };
}
