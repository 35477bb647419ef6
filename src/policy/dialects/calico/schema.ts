// Owns the structural schemas of Calico's projectcalico.org/v3 Tier, NetworkPolicy and GlobalNetworkPolicy (and
// their staged forms), as api/pkg/apis/projectcalico/v3 defines them, and the walker reporting unknown fields and types.

import type { Diagnostic } from '../../diagnostics.js';
import type { JsonValue, PolicyDocument } from '../../documents-types.js';
import { closest } from '../../suggest.js';
import { Code } from '../../../codes.js';

export type Schema =
  | { t: 'str'; enumOf?: readonly string[]; max?: number }
  | { t: 'num' }
  | { t: 'int'; min?: number; max?: number; enumOf?: readonly number[] }
  | { t: 'bool' }
  /** A port (`80`, `"80:90"`, `"http"`) or a protocol (`TCP`, `6`): checked by validate.ts. */
  | { t: 'intOrStr' }
  | { t: 'strMap' }
  | { t: 'arr'; of: Schema; max?: number }
  | { t: 'obj'; f: Record<string, Schema>; req?: readonly string[] };

const str: Schema = { t: 'str' };
const selector: Schema = { t: 'str', max: 1024 };
const strArr: Schema = { t: 'arr', of: str };

const ports: Schema = { t: 'arr', of: { t: 'intOrStr' }, max: 50 };
const nets: Schema = { t: 'arr', of: str, max: 256 };

const entityRule: Schema = {
  t: 'obj',
  f: {
    nets, notNets: nets,
    selector, notSelector: selector, namespaceSelector: selector,
    ports, notPorts: ports,
    serviceAccounts: { t: 'obj', f: { names: strArr, selector } },
    services: { t: 'obj', f: { name: { t: 'str', max: 253 }, namespace: { t: 'str', max: 253 } } },
  },
};

const icmp: Schema = { t: 'obj', f: { type: { t: 'int', min: 0, max: 254 }, code: { t: 'int', min: 0, max: 255 } } };

export const ACTIONS = ['Allow', 'Deny', 'Log', 'Pass'] as const;

const rule: Schema = {
  t: 'obj',
  f: {
    action: str,
    ipVersion: { t: 'int', enumOf: [4, 6] },
    protocol: { t: 'intOrStr' },
    notProtocol: { t: 'intOrStr' },
    icmp, notICMP: icmp,
    source: entityRule,
    destination: entityRule,
    http: {
      t: 'obj',
      f: {
        methods: { t: 'arr', of: str, max: 20 },
        paths: { t: 'arr', of: { t: 'obj', f: { exact: { t: 'str', max: 1024 }, prefix: { t: 'str', max: 1024 } } }, max: 20 },
      },
    },
    metadata: { t: 'obj', f: { annotations: { t: 'strMap' } } },
  },
  req: ['action'],
};

const rules: Schema = { t: 'arr', of: rule, max: 1024 };
const types: Schema = { t: 'arr', of: { t: 'str', enumOf: ['Ingress', 'Egress'] }, max: 2 };
const hints: Schema = { t: 'arr', of: { t: 'str', enumOf: ['AssumeNeededOnEveryNode'] } };

const networkPolicy: Record<string, Schema> = {
  tier: str, order: { t: 'num' }, selector, types, ingress: rules, egress: rules, serviceAccountSelector: selector, performanceHints: hints,
};
const globalNetworkPolicy: Record<string, Schema> = {
  ...networkPolicy, namespaceSelector: selector, doNotTrack: { t: 'bool' }, preDNAT: { t: 'bool' }, applyOnForward: { t: 'bool' },
};
const staged = (f: Record<string, Schema>): Schema => ({ t: 'obj', f: { ...f, stagedAction: { t: 'str', enumOf: ['Set', 'Delete', 'Learn', 'Ignore'] } } });

const SPECS: Record<string, Schema> = {
  Tier: { t: 'obj', f: { order: { t: 'num' }, defaultAction: { t: 'str', enumOf: ['Deny', 'Pass'] } } },
  NetworkPolicy: { t: 'obj', f: networkPolicy },
  GlobalNetworkPolicy: { t: 'obj', f: globalNetworkPolicy },
  StagedNetworkPolicy: staged(networkPolicy),
  StagedGlobalNetworkPolicy: staged(globalNetworkPolicy),
};

export const CALICO_API_VERSION = 'projectcalico.org/v3';

export function specSchemaFor(kind: string): Schema | undefined {
  return SPECS[kind];
}

export function isObject(v: JsonValue | undefined): v is { [key: string]: JsonValue } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reports unknown fields (with the closest known spelling), wrong types, missing required fields, enum and size limits. */
export function checkSchema(doc: PolicyDocument, value: JsonValue | undefined, schema: Schema, path: string, out: Diagnostic[]): void {
  const report = (code: string, message: string, at: string) =>
    out.push({ code, severity: 'error', message, origin: doc.locate(at), fieldPath: at });
  // Kubernetes reads an explicit null as an absent field.
  if (value === undefined || value === null) return;
  switch (schema.t) {
    case 'str':
      if (typeof value !== 'string') { report(Code.CALICO_WRONG_TYPE, `${path} must be a string`, path); return; }
      if (schema.enumOf && !schema.enumOf.includes(value)) report(Code.CALICO_BAD_VALUE, `${path} must be one of ${schema.enumOf.join(', ')} (got "${value}")`, path);
      if (schema.max !== undefined && value.length > schema.max) report(Code.CALICO_TOO_MANY, `${path} is longer than ${schema.max} characters`, path);
      return;
    case 'num':
      if (typeof value !== 'number' || !Number.isFinite(value)) report(Code.CALICO_WRONG_TYPE, `${path} must be a number`, path);
      return;
    case 'int':
      if (typeof value !== 'number' || !Number.isInteger(value)) { report(Code.CALICO_WRONG_TYPE, `${path} must be an integer`, path); return; }
      if (schema.enumOf && !schema.enumOf.includes(value)) report(Code.CALICO_BAD_VALUE, `${path} must be one of ${schema.enumOf.join(', ')} (got ${value})`, path);
      if ((schema.min !== undefined && value < schema.min) || (schema.max !== undefined && value > schema.max)) {
        report(Code.CALICO_BAD_VALUE, `${path} must be between ${schema.min ?? '-inf'} and ${schema.max ?? 'inf'} (got ${value})`, path);
      }
      return;
    case 'bool':
      if (typeof value !== 'boolean') report(Code.CALICO_WRONG_TYPE, `${path} must be true or false`, path);
      return;
    case 'intOrStr':
      if (typeof value !== 'string' && !(typeof value === 'number' && Number.isInteger(value))) report(Code.CALICO_WRONG_TYPE, `${path} must be a number or a string`, path);
      return;
    case 'strMap':
      if (!isObject(value)) { report(Code.CALICO_WRONG_TYPE, `${path} must be a map of strings`, path); return; }
      for (const [k, v] of Object.entries(value)) if (typeof v !== 'string') report(Code.CALICO_WRONG_TYPE, `${path}[${k}] must be a string`, `${path}[${k}]`);
      return;
    case 'arr':
      if (!Array.isArray(value)) { report(Code.CALICO_WRONG_TYPE, `${path} must be a list`, path); return; }
      if (schema.max !== undefined && value.length > schema.max) report(Code.CALICO_TOO_MANY, `${path} allows at most ${schema.max} item(s)`, path);
      value.forEach((item, i) => checkSchema(doc, item, schema.of, `${path}[${i}]`, out));
      return;
    case 'obj': {
      if (!isObject(value)) { report(Code.CALICO_WRONG_TYPE, `${path} must be a mapping`, path); return; }
      const known = Object.keys(schema.f);
      for (const [k, v] of Object.entries(value)) {
        const sub = schema.f[k];
        if (!sub) {
          const hint = closest(k, known, (s) => [s]);
          report(Code.CALICO_UNKNOWN_FIELD, `unknown field ${path}.${k}${hint ? ` (did you mean ${hint}?)` : ''}`, `${path}.${k}`);
          continue;
        }
        checkSchema(doc, v, sub, `${path}.${k}`, out);
      }
      for (const r of schema.req ?? []) if (value[r] === undefined || value[r] === null) report(Code.CALICO_MISSING_FIELD, `${path}.${r} is required`, path);
      return;
    }
  }
}
