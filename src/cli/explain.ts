// Owns `portcullis explain`: the same input as `check`, rendered for a person: which policies select
// the workload (and why others do not), and for every rule whether each field matched, with the value seen.

import { decideRequestDetailed, CheckInputError, createCheckAuthenticator, type CheckOutput, type CheckRequest } from '../check/decide.js';
import { explain, type ExplainReport, type MatchTrace } from '../policy/explain.js';
import { jwtFlagsHelp, peersFlagHelp, prepareCheck, readRequestJson } from './check.js';
import { RequestJsonError } from '../check/request-json.js';
import { compareWithIstioExact, type CompatibilityOutcome } from '../check/compatibility-diff.js';
import { workloadFlagsHelp } from './workload-flags.js';

const help = `usage: portcullis explain --policies PATH [--policies PATH...] --request FILE|- [flags]

Takes the same input as \`portcullis check\` and prints, for a person, which policies selected the
workload and why each rule and field matched or not.

  --policies PATH          policy file or directory (repeatable)
${peersFlagHelp}  --request FILE|-         one request as JSON (- reads standard input)
${jwtFlagsHelp}
${workloadFlagsHelp}`;

export async function main(argv: string[]): Promise<number> {
  const prepared = await prepareCheck('explain', argv, help);
  if (typeof prepared === 'number') return prepared;
  const { snapshot, sources, now, jwksFiles, settings, values } = prepared;
  if (values.request === undefined) { process.stderr.write('portcullis explain: --request is required\n'); return 2; }
  const authenticator = createCheckAuthenticator(snapshot, { now, jwksFiles, settings });
  try {
    const request = await readRequestJson(values.request);
    const result = await decideRequestDetailed(snapshot, request as CheckRequest, { authenticator, limits: settings.limits });
    const compared = await compareWithIstioExact(sources, snapshot, request as CheckRequest, result.output, now, jwksFiles);
    const out: string[] = [];
    if (!result.context || !result.decision) {
      const o = result.output;
      out.push(`Decision: ${o.verdict.toUpperCase()} ${wireStatus(o)} (${o.reason})${o.message ? ` — ${o.message}` : ''}`);
      out.push(o.verdict === 'bad_request'
        ? 'The request was refused before any policy ran: it is malformed for the proxy (see docs/engine.md).'
        : 'The request was refused by RequestAuthentication before authorization ran (an invalid token is a 401 even where a DENY policy would match).');
    } else {
      renderReport(explain(snapshot, result.context), wireStatus(result.output), out);
    }
    if (compared) renderCompatibility(compared, out);
    process.stdout.write(out.join('\n') + '\n');
    return 0;
  } catch (e) {
    if (e instanceof RequestJsonError) { process.stderr.write(`${e.message}\n`); return 2; }
    if (e instanceof CheckInputError || e instanceof SyntaxError || (e as NodeJS.ErrnoException).code === 'ENOENT') {
      process.stderr.write(`portcullis explain: ${(e as Error).message}\n`);
      return 2;
    }
    throw e;
  } finally {
    authenticator.close();
  }
}

/** What the caller sees, as `check` reports it: the HTTP status, or for gRPC the trailers-only grpc-status. */
function wireStatus(o: CheckOutput): string {
  return o.grpcStatus === null ? String(o.status) : `grpc-status ${o.grpcStatus}`;
}

function renderReport(r: ExplainReport, status: string, out: string[]): void {
  const q = r.request;
  out.push(`Request: ${q.protocol} ${q.method} ${q.path}${q.query ? `?${q.query}` : ''} (authority "${q.authority}", port ${q.port})`);
  out.push(`  from ${q.peer ?? 'a plaintext caller (no mTLS identity)'} at ${q.sourceIp}${q.jwt ? `, JWT ${q.jwt.issuer}/${q.jwt.subject}` : ', no JWT'}`);
  const d = r.decision;
  const by = d.policy ? ` by ${d.policy.dialect} ${d.policy.kind} ${d.policy.namespace}/${d.policy.name}` : '';
  out.push(`Decision: ${d.verdict.toUpperCase()} ${status} (${d.reason})${by}${d.tier ? ` in tier ${d.tier}` : ''}${d.rule ? `, rule ${d.rule}` : ''}${d.authorization ? `, authorized by ${d.authorization}` : ''}`);
  if (d.audit) out.push(`  AUDIT marked by ${d.audit.policy.namespace}/${d.audit.policy.name}${d.audit.rule ? ` (${d.audit.rule})` : ''}`);
  if (d.shadow?.action === 'STAGED') {
    // Calico's walk with the staged policies committed: name the kind too (a staged policy, an enforced one, or a Tier's end).
    const p = d.shadow.policy;
    out.push(`  staged (Calico, with the staged policies committed) would ${d.shadow.verdict}${p ? ` by ${p.kind} ${p.namespace}/${p.name}` : ' (namespace profile)'}${d.shadow.rule ? `, rule ${d.shadow.rule}` : ''}`);
  } else if (d.shadow) {
    out.push(`  dry-run (${d.shadow.action}) would ${d.shadow.verdict}${d.shadow.policy ? ` by ${d.shadow.policy.namespace}/${d.shadow.policy.name}` : ''}`);
  }
  out.push('', `Policies (revision ${r.revision}):`);
  if (r.documents.length === 0) out.push('  (none loaded)');
  for (const doc of r.documents) {
    out.push(`  ${doc.applies ? 'applies ' : 'skipped '} ${doc.kind} ${doc.namespace}/${doc.name}  (${doc.file}:${doc.line})${doc.why ? ` — ${doc.why}` : ''}`);
  }
  if (r.tiers.length === 0) out.push('', 'No dialect has a policy for this workload: requests are allowed (no_policies).');
  for (const t of r.tiers) {
    out.push('', `${t.dialect} ${t.tier} tier${t.scope ? ` — port ${q.port}: ${t.scope}` : ''}: ${t.outcome.verdict.toUpperCase()} (${t.outcome.reason})`);
    if (t.route === 'none') out.push('  route: none matches (not found, before any authorization)');
    else if (t.route) out.push(`  route: ${t.route.label} (score ${t.route.score.join(',')})`);
    for (const rule of t.rules) {
      const edit = rule.edit === undefined ? '' : rule.edit.op === 'remove' ? ` (edit: remove ${rule.edit.name})` : ` (edit: ${rule.edit.op} ${rule.edit.name}: ${rule.edit.value})`;
      out.push(`  ${rule.action.toUpperCase()}${rule.dryRun ? ' (dry-run)' : ''} ${rule.id}${edit}: ${rule.matched ? 'MATCHED' : 'no match'}`);
      renderTrace(rule.trace, '    ', out);
    }
    out.push(`  when no rule decides: ${t.otherwise}`);
    for (const note of t.notes) out.push(`  ${note}`);
  }
  if (r.because.length > 0) {
    out.push('', 'Why:');
    for (const line of r.because) out.push(`  ${line}`);
  }
}

/** Shown only when `compatibility: secure` (or a hardening key) changed the outcome Istio would give. */
function renderCompatibility(c: CompatibilityOutcome, out: string[]): void {
  const o = c.istioExact;
  out.push('', `Compatibility: this outcome comes from Portcullis' secure reading. With \`compatibility: istio-exact\` it would be ${o.verdict.toUpperCase()} ${o.status} (${o.reason}).`);
  for (const d of c.deciding) out.push(`  ${d.setting}: ${d.secure} (istio-exact: ${d.istioExact}) — ${d.why}`);
  if (c.deciding.length === 0) out.push('  (several secure settings together; no single one decides it)');
}

function renderTrace(t: MatchTrace, indent: string, out: string[]): void {
  const mark = t.matched ? 'yes' : 'no ';
  const detail = t.expected !== undefined ? `  wants ${t.expected}, saw ${t.actual === null || t.actual === undefined ? '(absent)' : JSON.stringify(t.actual)}` : '';
  out.push(`${indent}[${mark}] ${t.node}${detail}`);
  for (const c of t.children ?? []) renderTrace(c, indent + '  ', out);
}
