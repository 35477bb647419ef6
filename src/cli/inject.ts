// Owns `portcullis inject -f FILE|-`: prints the manifests with the Portcullis sidecar added and reports
// each workload on stderr. Exit 0 (written, or nothing to change), 1 (a pod's annotations refused), 2 (bad input).

import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { injectYaml } from '../kubernetes/inject-yaml.js';
import { injectorFlagSpec, injectorFlagsHelp, injectorOptionsFrom } from '../kubernetes/options.js';

const help = `usage: portcullis inject -f FILE|- [options]

Reads Kubernetes manifests (multi-document YAML, kind: List; Deployment, StatefulSet, DaemonSet,
ReplicaSet, Job, CronJob, Pod) and prints them with Portcullis added to every pod template as a native
sidecar (Kubernetes 1.29+). Other documents are copied unchanged. Injecting twice changes nothing.
Per-pod settings come from portcullis.dev/ annotations on the pod template (see docs/deploy.md).

options:
  -f, --filename FILE|-            manifests to read ('-' for standard input)
${injectorFlagsHelp}
  -h, --help                       show this help
`;

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(typeof c === 'string' ? Buffer.from(c) : c);
  return Buffer.concat(chunks).toString('utf8');
}

export async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, strict: true, allowPositionals: false, options: { ...injectorFlagSpec, filename: { type: 'string', short: 'f' }, help: { type: 'boolean', short: 'h' } } }));
  } catch (err) {
    process.stderr.write(`portcullis inject: ${(err as Error).message}\n\n${help}`);
    return 2;
  }
  if (values.help) { process.stdout.write(help); return 0; }
  if (values.filename === undefined) { process.stderr.write(`portcullis inject: -f FILE (or -f - for standard input) is required\n\n${help}`); return 2; }
  const options = injectorOptionsFrom(values);
  if (typeof options === 'string') { process.stderr.write(`portcullis inject: ${options}\n`); return 2; }
  let source: string;
  try {
    source = values.filename === '-' ? await readAll(process.stdin) : await readFile(values.filename, 'utf8');
  } catch (err) {
    process.stderr.write(`portcullis inject: cannot read ${values.filename}: ${(err as Error).message}\n`);
    return 2;
  }
  const result = injectYaml(source, options);
  for (const r of result.reports) {
    process.stderr.write(`${r.outcome}: ${r.name}${r.outcome === 'injected' ? '' : ` (${r.detail})`}\n`);
    for (const w of r.warnings) process.stderr.write(`warning: ${r.name}: ${w}\n`);
  }
  if (!result.ok) {
    process.stderr.write(`portcullis inject: ${result.error}\n`);
    return result.reports.some((r) => r.outcome === 'refused') ? 1 : 2;
  }
  process.stdout.write(result.output);
  if (!result.changed) {
    process.stderr.write(result.reports.length === 0
      ? 'portcullis inject: no pod templates found; output is the input unchanged\n'
      : 'portcullis inject: nothing changed (every pod is already injected or skipped)\n');
  }
  return 0;
}
