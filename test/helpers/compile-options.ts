// Owns the CompileOptions tests start from: every field a test is not about at its usual value, so a test
// states only its workload and what it changes (the fields are src/policy/ir.ts's CompileOptions).
import type { CompileOptions, WorkloadIdentity } from '../../src/policy/ir.js';

type Extra = Omit<Partial<CompileOptions>, 'workload' | 'linkerd'> & { linkerd?: Partial<CompileOptions['linkerd']> };

/** A workload in `namespace` (service account `default`, trust domain `cluster.local`), no path normalization. */
export function testCompileOptions(workload: Partial<WorkloadIdentity> & Pick<WorkloadIdentity, 'namespace'>, extra: Extra = {}): CompileOptions {
  const { linkerd, ...rest } = extra;
  return {
    workload: { labels: {}, annotations: {}, serviceAccount: 'default', trustDomain: 'cluster.local', trustDomainAliases: [], ...workload },
    rootNamespace: 'istio-system', pathNormalization: 'NONE', customProviders: [],
    linkerd: { defaultPolicy: 'all-unauthenticated', clusterNetworks: [], probeNetworks: [], probePaths: {}, portNames: {}, controlPlaneNamespace: 'linkerd', ...linkerd },
    ...rest,
  };
}
