// Owns `portcullis replay`: decide recorded traffic again under a candidate policy set and report what would
// change. Exit 0 (1 with --fail-on when such a change exists), 2 for unusable input (docs/replay.md).

import { parseArgs } from 'node:util';
import { formatDiagnostic } from '../policy/diagnostics.js';
import { parseWorkloadFlags, workloadFlagsHelp } from './workload-flags.js';
import { compilePolicySet, unknownFlagHint } from './check.js';
import { replay, type ReplayResult } from '../replay/replay.js';
import { renderJson, renderMarkdown, renderText, type ReplayHeader } from '../replay/render.js';

const replayFlagSpec = {
  log: { type: 'string', multiple: true },
  policies: { type: 'string', multiple: true },
  baseline: { type: 'string', multiple: true },
  format: { type: 'string' },
  'fail-on': { type: 'string' },
  samples: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

const formats = ['text', 'json', 'markdown'] as const;
const failOns = ['newly-denied', 'newly-allowed', 'any'] as const;

const help = `usage: portcullis replay --log FILE [--log FILE...] --policies PATH [--policies PATH...] [--baseline PATH...] [flags]

Decides every recorded request of the decision logs again under the candidate policies and reports what
would change: unchanged, newly denied, newly allowed, changed reason (same verdict, other policy, rule or
reason), with the changes grouped by policy and rule, by peer identity and by path pattern, and the
failing condition of each newly denied example. Events need replayable capture (decisionLogCapture:
replayable, the default); others are counted as not replayable.

  --log FILE               decision log (NDJSON, plain or gzip; repeatable)
  --policies PATH          candidate policy file or directory (repeatable)
  --baseline PATH          current policy file or directory (repeatable); default: the recorded decisions
  --format FORMAT          text (default), json, or markdown (a short pull-request comment)
  --fail-on CHANGE         exit 1 when a request is newly-denied, newly-allowed, or any (either, or a changed reason)
  --samples N              example requests kept per group (default 3)
${workloadFlagsHelp}
Exit 0; 1 when --fail-on finds such a change; 2 for unusable input (no readable log, policy errors,
or no event that can be replayed).
`;

export async function main(argv: string[]): Promise<number> {
  const workload = parseWorkloadFlags(argv);
  let values;
  try {
    values = parseArgs({ args: workload.rest, options: replayFlagSpec, allowPositionals: false, strict: true }).values;
  } catch (e) {
    process.stderr.write(`portcullis replay: ${(e as Error).message}${unknownFlagHint(e as Error, Object.keys(replayFlagSpec))}\n\n${help}`);
    return 2;
  }
  if (values.help) { process.stdout.write(help); return 0; }
  if (workload.diagnostics.some((d) => d.severity === 'error')) {
    for (const d of workload.diagnostics) process.stderr.write(formatDiagnostic(d) + '\n');
    return 2;
  }
  const usage = (message: string): number => { process.stderr.write(`portcullis replay: ${message}\n\n${help}`); return 2; };
  if (!values.log || values.log.length === 0) return usage('--log is required');
  if (!values.policies || values.policies.length === 0) return usage('--policies is required');
  const format = values.format ?? 'text';
  if (!(formats as readonly string[]).includes(format)) return usage(`--format must be one of ${formats.join(', ')}`);
  const failOn = values['fail-on'];
  if (failOn !== undefined && !(failOns as readonly string[]).includes(failOn)) return usage(`--fail-on must be one of ${failOns.join(', ')}`);
  const samples = values.samples === undefined ? 3 : Number(values.samples);
  if (!Number.isInteger(samples) || samples < 0 || samples > 100) return usage('--samples must be a whole number from 0 to 100');

  const candidate = await compilePolicySet('replay', values.policies, workload.options);
  if (typeof candidate === 'number') return candidate;
  const baseline = values.baseline ? await compilePolicySet('replay', values.baseline, workload.options) : undefined;
  if (typeof baseline === 'number') return baseline;

  let result: ReplayResult;
  try {
    result = await replay({ logs: values.log, candidate: candidate.snapshot, ...(baseline ? { baseline: baseline.snapshot } : {}), samplesPerGroup: samples });
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const what = err.code === 'ENOENT' ? 'no such file' : err.code === 'Z_DATA_ERROR' || err.code === 'Z_BUF_ERROR' ? `corrupt gzip (${err.message})` : err.message;
    process.stderr.write(`portcullis replay: cannot read the log${err.path ? ` ${err.path}` : ''}: ${what}\n`);
    return 2;
  }
  const header: ReplayHeader = {
    logs: values.log,
    candidate: { paths: values.policies, revision: candidate.snapshot.revision },
    baseline: baseline && values.baseline ? { paths: values.baseline, revision: baseline.snapshot.revision } : null,
  };
  process.stdout.write(format === 'json' ? renderJson(header, result) : format === 'markdown' ? renderMarkdown(header, result) : renderText(header, result));
  if (result.replayed === 0) {
    // A gate that passes on nothing would pass every change: say so and refuse.
    const why = result.notReplayable.map((s) => `${s.count} not replayable (${s.why})`).concat(result.malformed.count > 0 ? [`${result.malformed.count} malformed`] : []);
    process.stderr.write(`portcullis replay: no event could be decided again${why.length > 0 ? `: ${why.join('; ')}` : ' (the logs are empty)'}\n`);
    return 2;
  }
  const c = result.tally.counts;
  const failed = failOn === 'newly-denied' ? c.newly_denied > 0
    : failOn === 'newly-allowed' ? c.newly_allowed > 0
      : failOn === 'any' ? c.newly_denied + c.newly_allowed + c.changed_reason > 0 : false;
  return failed ? 1 : 0;
}
