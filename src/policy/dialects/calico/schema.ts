// Owns the structural schemas of Calico's projectcalico.org/v3 Tier, NetworkPolicy and GlobalNetworkPolicy (and
// their staged forms), as api/pkg/apis/projectcalico/v3 defines them, written in the shared schema language.

import { s, type Shape, type ShapeCodes } from '../../schema.js';
import { Code } from '../../../codes.js';

export { isObject } from '../../schema.js';

export const calicoShapeCodes: ShapeCodes = {
  unknown_field: Code.CALICO_UNKNOWN_FIELD, wrong_type: Code.CALICO_WRONG_TYPE, missing_field: Code.CALICO_MISSING_FIELD,
  bad_value: Code.CALICO_BAD_VALUE, too_many: Code.CALICO_TOO_MANY,
  // Calico reads an explicit null as an absent field, silently, and no Calico list has a minimum.
  null_field: Code.CALICO_WRONG_TYPE, too_few: Code.CALICO_BAD_VALUE,
};

/** Selectors: strings parsed by validate.ts; the API caps them at 1024 characters. */
const selector = s.shortString(1024);
const name253 = s.shortString(253);

/** A port (`80`, `"80:90"`, `"http"`): its form is checked by validate.ts. */
const ports = s.list(s.intOrString, { max: 50 });
const nets = s.list(s.string, { max: 256 });

const entityRule = s.object({
  nets, notNets: nets,
  selector, notSelector: selector, namespaceSelector: selector,
  ports, notPorts: ports,
  serviceAccounts: s.object({ names: s.strings, selector }),
  services: s.object({ name: name253, namespace: name253 }),
});

const icmp = s.object({ type: s.int({ min: 0, max: 254 }), code: s.int({ min: 0, max: 255 }) });

export const ACTIONS = ['Allow', 'Deny', 'Log', 'Pass'] as const;

/** `protocol` (`TCP`, `6`): which names and numbers, validate.ts says. */
const protocol = s.intOrStringOf('a protocol name or number');

const rule = s.object({
  // Checked by validate.ts, which suggests the closest action.
  action: s.string,
  ipVersion: s.intOneOf(4, 6),
  protocol, notProtocol: protocol,
  icmp, notICMP: icmp,
  source: entityRule,
  destination: entityRule,
  http: s.object({
    methods: s.list(s.string, { max: 20 }),
    paths: s.list(s.object({ exact: s.shortString(1024), prefix: s.shortString(1024) }), { max: 20 }),
  }),
  metadata: s.object({ annotations: s.stringMap }),
}, ['action']);

const rules = s.list(rule, { max: 1024 });
const types = s.list(s.oneOf('Ingress', 'Egress'), { max: 2 });
const hints = s.list(s.oneOf('AssumeNeededOnEveryNode'));

const networkPolicy: Record<string, Shape> = {
  tier: s.string, order: s.number, selector, types, ingress: rules, egress: rules, serviceAccountSelector: selector, performanceHints: hints,
};
const globalNetworkPolicy: Record<string, Shape> = {
  ...networkPolicy, namespaceSelector: selector, doNotTrack: s.bool, preDNAT: s.bool, applyOnForward: s.bool,
};
export const STAGED_ACTIONS = ['Set', 'Delete', 'Learn', 'Ignore'] as const;
const staged = (f: Record<string, Shape>): Shape => s.object({ ...f, stagedAction: s.oneOf(...STAGED_ACTIONS) });

const SPECS: Record<string, Shape> = {
  Tier: s.object({ order: s.number, defaultAction: s.oneOf('Deny', 'Pass') }),
  NetworkPolicy: s.object(networkPolicy),
  GlobalNetworkPolicy: s.object(globalNetworkPolicy),
  StagedNetworkPolicy: staged(networkPolicy),
  StagedGlobalNetworkPolicy: staged(globalNetworkPolicy),
};

export const CALICO_API_VERSION = 'projectcalico.org/v3';

export function specSchemaFor(kind: string): Shape | undefined {
  return SPECS[kind];
}
