// Test helper: validates Kubernetes objects against the Kubernetes OpenAPI schema, using the validators
// generated from it by the kubernetes-models package (one class per apiVersion/kind, `validate()` throws).

interface ModelClass {
  new (data: unknown): { validate(): void };
}

const cache = new Map<string, ModelClass>();

async function modelFor(apiVersion: string, kind: string): Promise<ModelClass> {
  const key = `${apiVersion}/${kind}`;
  const hit = cache.get(key);
  if (hit) return hit;
  let mod: Record<string, unknown>;
  try {
    mod = (await import(`kubernetes-models/${apiVersion}/${kind}`)) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`no schema for ${key}: ${(err as Error).message}`);
  }
  const cls = mod[kind] as ModelClass | undefined;
  if (!cls) throw new Error(`kubernetes-models/${key} exports no ${kind}`);
  cache.set(key, cls);
  return cls;
}

/** Throws with the schema error (instance path + message) when `obj` is not a valid object of its kind. */
export async function validateKubernetesObject(obj: unknown): Promise<void> {
  if (typeof obj !== 'object' || obj === null) throw new Error('not an object');
  const { apiVersion, kind, items } = obj as { apiVersion?: unknown; kind?: unknown; items?: unknown };
  if (typeof apiVersion !== 'string' || typeof kind !== 'string') throw new Error('apiVersion and kind are required');
  if (kind === 'List') {
    if (!Array.isArray(items)) throw new Error('List without items');
    for (const item of items) await validateKubernetesObject(item);
    return;
  }
  const Model = await modelFor(apiVersion, kind);
  try {
    new Model(obj).validate();
  } catch (err) {
    const name = (obj as { metadata?: { name?: string } }).metadata?.name ?? '<unnamed>';
    throw new Error(`${kind} ${name} does not match the Kubernetes schema: ${(err as Error).message}`);
  }
}
