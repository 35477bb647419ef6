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

/**
 * Unknown fields: the OpenAPI schema lets them through (the API server drops or, with strict field
 * validation, refuses them), so each object is also type-checked as an object literal against the
 * kubernetes-models interface of its kind, where TypeScript's excess-property check names every field
 * the Kubernetes API does not have. Returns the compiler's messages (empty when all are known).
 */
export async function unknownFieldProblems(objects: readonly unknown[], root: string): Promise<string[]> {
  const ts = (await import('typescript')).default;
  const { mkdtempSync, rmSync, writeFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const flat: { apiVersion: string; kind: string; obj: unknown }[] = [];
  const add = (o: unknown): void => {
    const { apiVersion, kind, items } = o as { apiVersion: string; kind: string; items?: unknown[] };
    if (kind === 'List') { for (const i of items ?? []) add(i); return; }
    flat.push({ apiVersion, kind, obj: o });
  };
  for (const o of objects) add(o);
  const lines = flat.map((f, i) => `export const m${i}: import('kubernetes-models/${f.apiVersion}/${f.kind}').I${f.kind} = ${JSON.stringify(f.obj)};`);
  // Inside the repository, so `kubernetes-models` resolves from its node_modules.
  const dir = mkdtempSync(join(root, 'dist', '.kube-schema-'));
  try {
    const file = join(dir, 'check.ts');
    writeFileSync(file, lines.join('\n') + '\n');
    const program = ts.createProgram([file], { strict: true, noEmit: true, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022, skipLibCheck: true, types: [] });
    return ts.getPreEmitDiagnostics(program).map((d) => {
      const line = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line : -1;
      const which = line >= 0 ? flat[line] : undefined;
      return `${which ? `${which.kind} ${(which.obj as { metadata?: { name?: string } }).metadata?.name ?? ''}: ` : ''}${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`;
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
