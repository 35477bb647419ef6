// Owns the one Kubernetes label-selector matcher every dialect uses (matchLabels AND matchExpressions with
// In, NotIn, Exists, DoesNotExist), as apimachinery's LabelSelectorAsSelector evaluates it.
import type { JsonValue } from './documents-types.js';

type Obj = { [key: string]: JsonValue };
const isObject = (v: JsonValue | undefined): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const list = (v: JsonValue | undefined): JsonValue[] => (Array.isArray(v) ? v : []);

/**
 * True when `labels` satisfy the selector. An absent selector (or `{}`) selects everything; an unknown
 * operator selects nothing (fail closed). `NotIn` and `DoesNotExist` also hold when the key is missing.
 */
export function selectorMatches(sel: JsonValue | undefined, labels: Record<string, string>): boolean {
  if (!isObject(sel)) return true;
  const ml = isObject(sel.matchLabels) ? sel.matchLabels : {};
  for (const [k, v] of Object.entries(ml)) if (labels[k] !== v) return false;
  for (const e of list(sel.matchExpressions).filter(isObject)) {
    const key = String(e.key);
    const values = list(e.values).filter((x): x is string => typeof x === 'string');
    const has = Object.prototype.hasOwnProperty.call(labels, key);
    switch (e.operator) {
      case 'In': if (!has || !values.includes(labels[key] ?? '')) return false; break;
      case 'NotIn': if (has && values.includes(labels[key] ?? '')) return false; break;
      case 'Exists': if (!has) return false; break;
      case 'DoesNotExist': if (has) return false; break;
      default: return false;
    }
  }
  return true;
}
