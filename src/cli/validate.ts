// Owns `portcullis validate PATH...`: every problem in a policy set at once, one line each
// (`file:line:col severity code message (fieldPath)`) or JSON; exit 1 when any error.

import { parseArgs } from 'node:util';
import { readPolicySources } from '../config/policy-files.js';
import { compilePolicies } from '../policy/compile.js';
import { formatDiagnostic, hasErrors, type Diagnostic } from '../policy/diagnostics.js';
import { defaultCompileOptions } from './workload-flags.js';
import { readPeerFile } from '../config/peer-source.js';
import { peersFlagHelp } from './check.js';
import { Code } from '../codes.js';

const help = `usage: portcullis validate [--format text|json] [--peers FILE] PATH...

Reads policy files and directories (YAML as for kubectl apply: multi-document, kind: List) and reports
every problem: file:line:col severity code message (fieldPath). Exit 0 when there are no errors
(warnings allowed), 1 when there is any error, 2 when a path cannot be read.

${peersFlagHelp.trimEnd()}
                           (checked too; with no PATH only the registry is checked)
`;

export async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options: { format: { type: 'string', default: 'text' }, peers: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
  } catch (e) {
    process.stderr.write(`portcullis validate: ${(e as Error).message}\n\n${help}`);
    return 2;
  }
  if (parsed.values.help) { process.stdout.write(help); return 0; }
  const format = parsed.values.format;
  if (format !== 'text' && format !== 'json') { process.stderr.write(`portcullis validate: --format must be text or json\n`); return 2; }
  if (parsed.positionals.length === 0 && parsed.values.peers === undefined) { process.stderr.write(help); return 2; }
  let sources;
  try {
    sources = await readPolicySources(parsed.positionals);
  } catch (e) {
    process.stderr.write(`portcullis validate: ${(e as Error).message}\n`);
    return 2;
  }
  const peers = parsed.values.peers === undefined ? undefined : await readPeerFile(parsed.values.peers);
  if (peers?.diagnostics.some((d) => d.code === Code.PEERS_READ)) { process.stderr.write(`portcullis validate: ${peers.diagnostics[0]?.message ?? ''} (${parsed.values.peers})\n`); return 2; }
  // Validation does not depend on a workload; lowering for a neutral one adds reference checks.
  const options = peers?.registry ? { ...defaultCompileOptions(), peers: peers.registry } : defaultCompileOptions();
  const compiled = sources.length > 0 ? compilePolicies(sources, options) : { diagnostics: [], snapshot: undefined };
  const diagnostics = [...(peers?.diagnostics ?? []), ...compiled.diagnostics];
  const snapshot = compiled.snapshot;
  const ordered = sortDiagnostics(diagnostics);
  if (format === 'json') {
    process.stdout.write(JSON.stringify({ files: sources.length, documents: snapshot?.documents.length ?? null, diagnostics: ordered }, null, 2) + '\n');
  } else {
    for (const d of ordered) process.stdout.write(formatDiagnostic(d) + '\n');
    const errors = ordered.filter((d) => d.severity === 'error').length;
    const warnings = ordered.filter((d) => d.severity === 'warning').length;
    process.stderr.write(`${sources.length + (peers ? 1 : 0)} file(s): ${errors} error(s), ${warnings} warning(s)\n`);
  }
  return hasErrors(diagnostics) ? 1 : 0;
}

function sortDiagnostics(list: Diagnostic[]): Diagnostic[] {
  return [...list].sort((a, b) =>
    a.origin.file.localeCompare(b.origin.file) || a.origin.line - b.origin.line || a.origin.column - b.origin.column);
}
