// Owns `portcullis replay`'s run: stream recorded events, decide each again with the data plane's own stages
// (check/decide.ts) under the candidate set (and a baseline set, or the recorded decision), and tally the changes.

import { basename } from 'node:path';
import type { PolicySnapshot } from '../policy/snapshot.js';
import { explain } from '../policy/explain.js';
import { CheckInputError, requestDecider, type CheckOutput, type CheckRequest, type DecideResult } from '../check/decide.js';
import { logLines } from './log-lines.js';
import { notReplayable, readRecordedLine, type Outcome, type RecordedRequest } from './recorded-event.js';
import { recordedJwt, type RecordedJwt, type ReplayJwtOutcome } from './recorded-jwt.js';
import { ChangeTally, classify, describeOutcome, type Sample } from './changes.js';

export interface ReplayOptions {
  logs: string[];
  candidate: PolicySnapshot;
  /** Absent: the recorded decision is the baseline. */
  baseline?: PolicySnapshot;
  samplesPerGroup: number;
}

export interface Problem { at: string; error: string }

export interface ReplayResult {
  /** Non-empty lines read. */
  events: number;
  /** Events decided again (the four change counts add up to it). */
  replayed: number;
  tally: ChangeTally;
  /** Why events could not be decided again, with a count and the first place each happened. */
  notReplayable: { why: string; count: number; first: string }[];
  malformed: { count: number; first: Problem[] };
  /** Policy revisions the recorded decisions were made under (the baseline when no --baseline is given). */
  recordedRevisions: Record<string, number>;
  seconds: number;
  /** CPU time (user + system) the replay took: comparable on a shared machine, unlike `seconds`. */
  cpuSeconds: number;
}

/** Malformed lines listed by place (the rest are counted). */
const MAX_LISTED_PROBLEMS = 20;
const MAX_REVISIONS = 100;

function outcomeOf(o: CheckOutput): Outcome {
  return {
    verdict: o.verdict, reason: o.reason, dialect: o.policy?.dialect ?? null,
    policy: o.policy ? { kind: o.policy.kind, namespace: o.policy.namespace, name: o.policy.name } : null,
    rule: o.rule, authorization: o.authorization,
  };
}

/** The conditions that failed for a refused request, from the explain tracer (or the refusal before policy). */
function failingConditions(snapshot: PolicySnapshot, result: DecideResult): string[] {
  if (!result.context || !result.decision) {
    const o = result.output;
    return [o.verdict === 'unauthenticated' ? `RequestAuthentication refused the token: ${o.reason}` : `refused before any policy: ${o.reason}`];
  }
  const because = explain(snapshot, result.context).because;
  return because.length > 0 ? because : [`${result.decision.reason}`];
}

interface Side { snapshot: PolicySnapshot; jwt: RecordedJwt['reusable']; decide: (request: CheckRequest) => Promise<DecideResult> }

function sideOf(snapshot: PolicySnapshot): Side {
  const jwt = recordedJwt(snapshot).reusable;
  return { snapshot, jwt, decide: requestDecider(snapshot, { authenticator: jwt }) };
}

/** Events are decided one at a time: the side's authenticator holds this event's token until the next. */
function decide(side: Side, r: RecordedRequest, jwt: ReplayJwtOutcome): Promise<DecideResult> {
  side.jwt.use(r.token, jwt);
  return side.decide(r.request);
}

export async function replay(options: ReplayOptions): Promise<ReplayResult> {
  const started = process.hrtime.bigint();
  const cpuStarted = process.cpuUsage();
  const candidate = sideOf(options.candidate);
  const baseline = options.baseline ? sideOf(options.baseline) : undefined;
  const tally = new ChangeTally(options.samplesPerGroup);
  const skipped = new Map<string, { count: number; first: string }>();
  const malformed = { count: 0, first: [] as Problem[] };
  const revisions: Record<string, number> = {};
  let events = 0;
  let replayed = 0;
  const skip = (why: string, at: string) => {
    const s = skipped.get(why);
    if (s) s.count++;
    else skipped.set(why, { count: 1, first: at });
  };
  const bad = (at: string, error: string) => {
    malformed.count++;
    if (malformed.first.length < MAX_LISTED_PROBLEMS) malformed.first.push({ at, error });
  };

  for (const file of options.logs) {
    const name = basename(file);
    for await (const batch of logLines(file)) for (const { line, text } of batch) {
      events++;
      const at = `${name}:${line}`;
      if (text === null) { bad(at, 'line longer than 1 MiB: not a decision event'); continue; }
      const read = readRecordedLine(text);
      if (read.kind === 'malformed') { bad(at, read.error); continue; }
      if (read.kind === 'not_replayable') { skip(read.why, at); continue; }
      const r = read.value;
      const jwt: ReplayJwtOutcome = { unverifiable: false };
      let now: DecideResult;
      let before: Outcome;
      try {
        now = await decide(candidate, r, jwt);
        before = baseline ? outcomeOf((await decide(baseline, r, jwt)).output) : r.recorded;
      } catch (err) {
        if (err instanceof CheckInputError) { bad(at, err.message); continue; }
        throw err;
      }
      if (jwt.unverifiable) { skip(notReplayable.tokenUnverified, at); continue; }
      replayed++;
      if (!baseline && Object.keys(revisions).length < MAX_REVISIONS) revisions[r.revision] = (revisions[r.revision] ?? 0) + 1;
      const after = outcomeOf(now.output);
      const kind = classify(before, after);
      if (kind === 'unchanged') { tally.addUnchanged(); continue; }
      const q = r.request;
      tally.add({
        kind, baseline: before, candidate: after, peer: q.peer ?? null,
        path: now.context?.path ?? q.path ?? '',
        request: `${q.method ?? ''} ${now.context?.path ?? q.path ?? ''} ${q.peer ?? ''}`,
        sample: (): Sample => ({
          at, decisionId: r.decisionId, time: r.time,
          method: q.method ?? '', path: now.context ? now.context.path + (now.context.query ? `?${now.context.query}` : '') : (q.path ?? ''),
          authority: q.host ?? '', port: q.port ?? 0, peer: q.peer ?? null,
          baseline: describeOutcome(before), candidate: describeOutcome(after),
          ...(kind === 'newly_denied' ? { failing: failingConditions(candidate.snapshot, now) } : {}),
        }),
      });
    }
  }
  return {
    events, replayed, tally,
    notReplayable: [...skipped].map(([why, s]) => ({ why, count: s.count, first: s.first })),
    malformed, recordedRevisions: revisions,
    seconds: Number(process.hrtime.bigint() - started) / 1e9,
    cpuSeconds: ((c) => (c.user + c.system) / 1e6)(process.cpuUsage(cpuStarted)),
  };
}
