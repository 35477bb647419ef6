// Owns the workload flags shared by `run`, `check` and `explain` (--namespace, --labels, ...): the same
// schema keys, meaning and defaults as `run`, assembled into the policy compiler's CompileOptions.

import type { Diagnostic } from '../policy/diagnostics.js';
import type { CompileOptions, PathNormalization } from '../policy/ir.js';
import { resolveCompatibility, withCompatibility, type Compatibility } from '../policy/compatibility.js';
import { configSchema } from './schema.js';
import { defaultWhere, flagScalar, Problems, type Located } from './located.js';
import { flagOptions, readFlags, type ParseArgsOptions } from './flags.js';
import { resolveValues } from './converters.js';
import { defaultRequestSettings, requestSettingKeys, requestSettingsOf, type RequestSettings } from './request-settings.js';

/** parseArgs option descriptors of the workload flags, for commands that parse their own flags too. */
export const workloadFlagOptions: ParseArgsOptions = flagOptions(configSchema.filter((k) => k.workload));

/**
 * The workload keys of a resolved value map, as the policy compiler takes them. `configured` names the keys
 * the operator set (file or flag) rather than left to the schema default.
 */
export function buildCompileOptions(v: ReadonlyMap<string, unknown>, configured: ReadonlySet<string> = new Set()): CompileOptions {
  const get = <T>(key: string): T => v.get(key) as T;
  // `compatibility` supplies the defaults of the settings it governs; a key set explicitly wins.
  const compatibility = get<Compatibility | undefined>('compatibility') ?? 'secure';
  const settings = resolveCompatibility(compatibility, {
    pathNormalization: get<PathNormalization | undefined>('pathNormalization'),
    rejectEncodedSlashes: get<boolean | undefined>('rejectEncodedSlashes'),
    denyPathsIgnoreCase: get<boolean | undefined>('denyPathsIgnoreCase'),
    jwtRequireExpiration: get<boolean | undefined>('jwks.requireExpiration'),
  });
  return withCompatibility({
    workload: {
      namespace: get<string>('namespace'),
      labels: get<Record<string, string>>('labels'),
      annotations: get<Record<string, string>>('annotations'),
      serviceAccount: get<string>('serviceAccount'),
      trustDomain: get<string>('trustDomain'),
      trustDomainAliases: get<string[]>('trustDomainAliases'),
      // Left unset unless given, so dialects can tell "no labels" from "not configured". Kubernetes labels
      // every namespace with its own name (immutable), so selectors on it always see it.
      ...(configured.has('namespaceLabels') ? { namespaceLabels: { ...get<Record<string, string>>('namespaceLabels'), 'kubernetes.io/metadata.name': get<string>('namespace') } } : {}),
    },
    rootNamespace: get<string>('rootNamespace'),
    pathNormalization: settings.pathNormalization,
    jwtExpirationOptionalIssuers: get<string[] | undefined>('jwks.expirationOptionalIssuers') ?? [],
    customProviders: [],
    linkerd: {
      defaultPolicy: get<string>('defaultPolicy'),
      defaultPolicyConfigured: configured.has('defaultPolicy'),
      clusterNetworks: get<string[]>('clusterNetworks'),
      probeNetworks: get<string[]>('probeNetworks'),
      probePaths: get<Record<number, string[]>>('probePaths'),
      portNames: get<Record<string, number>>('portNames'),
      controlPlaneNamespace: get<string>('controlPlaneNamespace'),
    },
    cilium: { policyEnforcement: get<'default' | 'always' | 'never'>('ciliumPolicyEnforcement') },
  }, compatibility, settings);
}

export interface WorkloadFlagsResult {
  options: CompileOptions;
  /** Limits and JWT settings: the flags given (--max-header-count, --jwt-clock-skew, ...), else run's defaults. */
  settings: RequestSettings;
  diagnostics: Diagnostic[];
  /** argv with the workload flags (and their values) removed, for the command's own parser. */
  rest: string[];
}

/**
 * The workload flags shared by `run`, `check` and `explain` (--namespace, --labels, ...), with the
 * same meaning and defaults as the `run` keys. `--namespace` defaults to `default` here (run requires it).
 * Flags this function does not know are left in `rest`.
 */
export function parseWorkloadFlags(argv: readonly string[], cwd = process.cwd()): WorkloadFlagsResult {
  const problems = new Problems();
  const specs = configSchema.filter((k) => k.workload);
  const flags = readFlags(argv, specs, cwd, false, problems);
  if (!flags.values.has('namespace')) {
    const where = defaultWhere('namespace', cwd);
    flags.values.set('namespace', flagScalar('default', where));
  }
  const all = [...specs, ...requestSettingKeys.filter((k) => !k.workload)];
  const v = resolveValues(all, new Map(), flags.values, cwd, defaultWhere('', cwd), problems);
  if (problems.hasErrors()) return { options: defaultCompileOptions(), settings: defaultRequestSettings(), diagnostics: problems.list, rest: flags.rest };
  return { options: buildCompileOptions(v, new Set(flags.values.keys())), settings: requestSettingsOf(v), diagnostics: problems.list, rest: flags.rest };
}

/** CompileOptions with every schema default (namespace `default`); used when flags had errors. */
export function defaultCompileOptions(): CompileOptions {
  const problems = new Problems();
  const specs = configSchema.filter((k) => k.workload);
  const flagValues = new Map<string, Located>([['namespace', flagScalar('default', defaultWhere('namespace', '/'))]]);
  return buildCompileOptions(resolveValues(specs, new Map(), flagValues, '/', defaultWhere('', '/'), problems));
}
