// Owns JWT authentication for replay: a recorded event keeps the verified claims, never the token, so the
// candidate's RequestAuthentications are applied to those claims (istio.md §10-§11) instead of to a signature.

import type { PolicySnapshot } from '../policy/snapshot.js';
import type { AuthnResult, JwtAuthenticator, JwtHeaderEdits, JwtRequestView } from '../jwt/types.js';
import { audienceAllowed, isCorsPreflight, outputHeaderNames, spaceDelimitedClaimsOf, verifiedOutcome } from '../jwt/authenticator.js';
import { extractTokens, planLocations } from '../jwt/extract.js';
import { JwtMessage, jwtFailure } from '../jwt/token.js';

/** What the recording sidecar learnt about the request's token. */
export type RecordedToken =
  /** Verified: the payload it carried. */
  | { kind: 'verified'; claims: Record<string, unknown> }
  /** Refused by RequestAuthentication (401/403) with this reason. */
  | { kind: 'failed'; reason: string; status: 401 | 403; message: string }
  /** No token was verified (none sent, or none where the recording policies looked). */
  | { kind: 'none' };

/**
 * Set when the candidate finds a token the recording sidecar never verified (it did not look there): its
 * claims are unknown, so the event cannot be decided again faithfully.
 */
export interface ReplayJwtOutcome { unverifiable: boolean }

/** One snapshot's JWT setup, prepared once; `authenticatorFor` is cheap per event. */
export interface RecordedJwt {
  authenticatorFor(token: RecordedToken, outcome: ReplayJwtOutcome): JwtAuthenticator;
  /** One authenticator for a run of events decided one at a time: `use` points it at the next event's token. */
  readonly reusable: JwtAuthenticator & { use(token: RecordedToken, outcome: ReplayJwtOutcome): void };
}

export function recordedJwt(snapshot: PolicySnapshot): RecordedJwt {
  const specs = snapshot.jwtProviders;
  const plans = planLocations(specs);
  const outputHeaders = outputHeaderNames(specs, []);
  const spaceDelimited = specs.map(spaceDelimitedClaimsOf);
  const none: AuthnResult = { kind: 'none', edits: { remove: [...outputHeaders], set: {} } };

  function authenticate(request: JwtRequestView, token: RecordedToken, outcome: ReplayJwtOutcome): AuthnResult {
    if (specs.length === 0) return { kind: 'none', edits: { remove: [], set: {} } satisfies JwtHeaderEdits };
    if (isCorsPreflight(request)) return none;
    // The recorded values are presence markers: what matters is where a token was, not what it said.
    const found = extractTokens(plans, request);
    if (found.length === 0) return none;
    if (token.kind === 'failed') return jwtFailure(token.reason, token.message, token.status);
    if (token.kind === 'none') { outcome.unverifiable = true; return none; }
    const providers = [...new Set(found.flatMap((t) => t.providers))];
    const locations = found.flatMap((t) => t.locations);
    const iss = token.claims['iss'];
    let matching = providers.filter((i) => typeof iss === 'string' && specs[i]?.issuer === iss);
    if (matching.length === 0) matching = providers.filter((i) => specs[i]?.issuer === '');
    const index = matching[0];
    if (index === undefined) return jwtFailure('jwt_unknown_issuer', JwtMessage.unknownIssuer);
    const spec = specs[index]!;
    if (!audienceAllowed(spec, token.claims['aud'])) return jwtFailure('jwt_bad_audience', JwtMessage.audienceNotAllowed, 403);
    // The signature and the clock were checked when the request was served; what the candidate adds is checked here.
    if (token.claims['exp'] === undefined && spec.requireExpiration === true) return jwtFailure('jwt_expired', JwtMessage.verificationFails);
    // outputPayloadToHeader forwards the payload segment: re-encoded from the claims (same JSON, not the same bytes).
    const payloadSegment = spec.outputPayloadToHeader ? Buffer.from(JSON.stringify(token.claims)).toString('base64url') : '';
    return verifiedOutcome(spec, spaceDelimited[index]!, outputHeaders, token.claims, payloadSegment, locations);
  }

  let currentToken: RecordedToken = { kind: 'none' };
  let currentOutcome: ReplayJwtOutcome = { unverifiable: false };
  return {
    reusable: {
      use(token, outcome) { currentToken = token; currentOutcome = outcome; },
      authenticate: (request) => authenticate(request, currentToken, currentOutcome),
      close: () => undefined,
    },
    authenticatorFor(token, outcome) {
      return {
        // Synchronous: no key is fetched and no signature checked, so the stage costs no promise.
        authenticate: (request) => authenticate(request, token, outcome),
        close: () => undefined,
      };
    },
  };
}
