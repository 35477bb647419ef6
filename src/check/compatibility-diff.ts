// Owns "did `compatibility: secure` decide this?": the same request decided again with Istio-exact settings,
// and, when the outcome differs, which of the secure settings (src/policy/compatibility.ts) made the difference.

import { compilePolicies } from '../policy/compile.js';
import type { PolicySource } from '../policy/documents-types.js';
import { compatibilityDifferences, compatibilitySettings, type CompatibilityDifference, type CompatibilitySettings } from '../policy/compatibility.js';
import type { CompileOptions } from '../policy/ir.js';
import type { PolicySnapshot } from '../policy/snapshot.js';
import { createCheckAuthenticator, decideRequest, type CheckOutput, type CheckRequest } from './decide.js';

export interface CompatibilityOutcome {
  /** What `compatibility: istio-exact` decides for the same request. */
  istioExact: CheckOutput;
  /** The secure settings that, each switched back to Istio's alone, change the outcome. */
  deciding: CompatibilityDifference[];
}

const OPTION_OF: Record<keyof CompatibilitySettings, keyof CompileOptions> = {
  pathNormalization: 'pathNormalization',
  rejectEncodedSlashes: 'rejectEncodedSlashes',
  denyPathsIgnoreCase: 'denyPathsIgnoreCase',
  denyHostsAnyPort: 'denyHostsAnyPort',
  jwtDefaultQueryParam: 'jwtDefaultQueryParam',
  jwtRequireExpiration: 'jwtRequireExpiration',
};

function sameOutcome(a: CheckOutput, b: CheckOutput): boolean {
  return a.verdict === b.verdict && a.status === b.status && a.reason === b.reason;
}

/**
 * Undefined when the options already decide as Istio, or Istio-exact settings reach the same outcome.
 * `outcome` is the decision under the snapshot's own options.
 */
export async function compareWithIstioExact(
  sources: readonly PolicySource[], snapshot: PolicySnapshot, request: CheckRequest, outcome: CheckOutput, now: () => number, jwksFiles: Record<string, string>,
): Promise<CompatibilityOutcome | undefined> {
  const exact = compatibilitySettings('istio-exact');
  const differing = compatibilityDifferences.filter((d) => (snapshot.options[OPTION_OF[d.setting]] ?? false) !== exact[d.setting]);
  if (differing.length === 0) return undefined;
  const decideWith = async (options: CompileOptions): Promise<CheckOutput | undefined> => {
    const compiled = compilePolicies(sources, options).snapshot;
    if (!compiled) return undefined;
    const authenticator = createCheckAuthenticator(compiled, { now, jwksFiles });
    try {
      return await decideRequest(compiled, request, { authenticator });
    } finally {
      authenticator.close();
    }
  };
  const allExact: CompileOptions = { ...snapshot.options, compatibility: 'istio-exact' };
  for (const d of differing) (allExact as unknown as Record<string, unknown>)[OPTION_OF[d.setting]] = exact[d.setting];
  const istioExact = await decideWith(allExact);
  if (!istioExact || sameOutcome(istioExact, outcome)) return undefined;
  const deciding: CompatibilityDifference[] = [];
  for (const d of differing) {
    const one = { ...snapshot.options } as unknown as Record<string, unknown>;
    one[OPTION_OF[d.setting]] = exact[d.setting];
    const alone = await decideWith(one as unknown as CompileOptions);
    if (alone && !sameOutcome(alone, outcome)) deciding.push(d);
  }
  return { istioExact, deciding };
}
