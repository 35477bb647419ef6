// Owns where a pod template lives in each workload kind (apps/v1, batch/v1, core/v1 and `kind: List`), so
// the injector sees only pods. Paths are JSON Pointer segments from the document root.

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

export interface PodLocation {
  /** Segments from the document root to the pod (`[]` for a Pod, `['spec','template']` for a Deployment). */
  path: (string | number)[];
  kind: string;
  /** `namespace/name` of the object holding the pod, for messages. */
  name: string;
  pod: Obj;
}

/** Kinds whose pod template is at spec.template. */
const templateKinds = new Set(['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job', 'ReplicationController']);

function describe(doc: Obj, kind: string): string {
  const meta = isObj(doc.metadata) ? doc.metadata : {};
  const ns = typeof meta.namespace === 'string' ? `${meta.namespace}/` : '';
  const name = typeof meta.name === 'string' ? meta.name : typeof meta.generateName === 'string' ? `${meta.generateName}*` : '<unnamed>';
  return `${kind} ${ns}${name}`;
}

/** Every pod (template) in one parsed YAML document; other kinds yield nothing. */
export function findPods(doc: unknown, prefix: (string | number)[] = []): PodLocation[] {
  if (!isObj(doc)) return [];
  const kind = typeof doc.kind === 'string' ? doc.kind : '';
  if (kind === 'List' || (kind.endsWith('List') && Array.isArray(doc.items))) {
    const items = Array.isArray(doc.items) ? doc.items : [];
    return items.flatMap((item, i) => findPods(item, [...prefix, 'items', i]));
  }
  const spec = isObj(doc.spec) ? doc.spec : undefined;
  if (kind === 'Pod' && spec) return [{ path: prefix, kind, name: describe(doc, kind), pod: doc }];
  if (templateKinds.has(kind) && spec && isObj(spec.template)) {
    return [{ path: [...prefix, 'spec', 'template'], kind, name: describe(doc, kind), pod: spec.template }];
  }
  if (kind === 'CronJob' && spec && isObj(spec.jobTemplate) && isObj(spec.jobTemplate.spec) && isObj(spec.jobTemplate.spec.template)) {
    return [{ path: [...prefix, 'spec', 'jobTemplate', 'spec', 'template'], kind, name: describe(doc, kind), pod: spec.jobTemplate.spec.template }];
  }
  return [];
}
