// Owns how a replay is shown: a report for people, JSON for machines and a short Markdown report for a
// pull-request comment; every form has the same counts and groups (changes.ts).

import { changeKinds, type ChangeKind, type Group, type Sample } from './changes.js';
import type { ReplayResult } from './replay.js';

export interface ReplayHeader {
  logs: string[];
  candidate: { paths: string[]; revision: string };
  baseline: { paths: string[]; revision: string } | null;
}

const titles: Record<ChangeKind, string> = { newly_denied: 'Newly denied', newly_allowed: 'Newly allowed', changed_reason: 'Changed reason' };
const dimensions = [['byRule', 'by policy and rule (baseline -> candidate)'], ['byPeer', 'by peer identity'], ['byPath', 'by path pattern']] as const;

/** Groups shown per dimension in the text and Markdown reports (JSON has all). */
const SHOWN_GROUPS = 10;

function baselineText(h: ReplayHeader, r: ReplayResult): string {
  if (h.baseline) return `${h.baseline.paths.join(', ')} (revision ${h.baseline.revision})`;
  const revs = Object.entries(r.recordedRevisions).sort((a, b) => b[1] - a[1]).map(([rev, n]) => `${rev || '(none)'} x${n}`);
  return `the recorded decisions${revs.length > 0 ? ` (policy revisions ${revs.slice(0, 5).join(', ')}${revs.length > 5 ? ', ...' : ''})` : ''}`;
}

export function renderJson(h: ReplayHeader, r: ReplayResult): string {
  const c = r.tally.counts;
  const groups = (kind: ChangeKind) => {
    const g = r.tally.groups[kind];
    return { total: c[kind], by_rule: g.byRule.sorted(), by_peer: g.byPeer.sorted(), by_path: g.byPath.sorted() };
  };
  return JSON.stringify({
    logs: h.logs,
    candidate: h.candidate,
    baseline: h.baseline ?? { recorded: true, revisions: r.recordedRevisions },
    counts: {
      events: r.events, replayed: r.replayed, unchanged: c.unchanged, newly_denied: c.newly_denied, newly_allowed: c.newly_allowed,
      changed_reason: c.changed_reason, not_replayable: r.notReplayable.reduce((n, s) => n + s.count, 0), malformed: r.malformed.count,
    },
    changes: { newly_denied: groups('newly_denied'), newly_allowed: groups('newly_allowed'), changed_reason: groups('changed_reason') },
    not_replayable: r.notReplayable,
    malformed: r.malformed,
    seconds: Number(r.seconds.toFixed(3)),
    cpu_seconds: Number(r.cpuSeconds.toFixed(3)),
  }, null, 2) + '\n';
}

function countLines(r: ReplayResult): [string, number][] {
  const c = r.tally.counts;
  return [
    ['unchanged', c.unchanged], ['newly denied', c.newly_denied], ['newly allowed', c.newly_allowed], ['changed reason', c.changed_reason],
    ['not replayable', r.notReplayable.reduce((n, s) => n + s.count, 0)], ['malformed lines', r.malformed.count],
  ];
}

export function renderText(h: ReplayHeader, r: ReplayResult): string {
  const out: string[] = [];
  out.push(`Replayed ${r.replayed} of ${r.events} events from ${h.logs.join(', ')} in ${r.seconds.toFixed(1)} s (${r.cpuSeconds.toFixed(1)} s CPU)`);
  out.push(`  candidate: ${h.candidate.paths.join(', ')} (revision ${h.candidate.revision})`);
  out.push(`  baseline:  ${baselineText(h, r)}`, '');
  for (const [label, n] of countLines(r)) out.push(`  ${label.padEnd(16)} ${String(n).padStart(8)}`);
  for (const s of r.notReplayable) out.push(`  not replayable: ${s.count} (${s.why}; first at ${s.first})`);
  for (const p of r.malformed.first) out.push(`  malformed: ${p.at}: ${p.error}`);
  if (r.malformed.count > r.malformed.first.length) out.push(`  malformed: ... and ${r.malformed.count - r.malformed.first.length} more`);
  for (const kind of changeKinds) {
    const total = r.tally.counts[kind];
    if (total === 0) continue;
    out.push('', `${titles[kind]}: ${total}`);
    for (const [dim, title] of dimensions) {
      const groups = r.tally.groups[kind][dim].sorted();
      out.push(`  ${title}:`);
      for (const g of groups.slice(0, SHOWN_GROUPS)) renderGroup(g, dim === 'byRule', out);
      if (groups.length > SHOWN_GROUPS) out.push(`    ... and ${groups.length - SHOWN_GROUPS} more groups (--format json lists them all)`);
    }
  }
  return out.join('\n') + '\n';
}

function renderGroup(g: Group, detailed: boolean, out: string[]): void {
  out.push(`    ${String(g.count).padStart(6)}  ${g.key}`);
  for (const s of g.samples) {
    out.push(`            e.g. ${requestText(s)} from ${s.peer ?? 'a plaintext caller'} at ${s.at}`);
    if (detailed && s.failing) for (const f of s.failing) out.push(`                 failing: ${f}`);
  }
}

/** `GET /api/orders (authority "b:8443")`, or for an opaque TCP connection its port. */
const requestText = (s: Sample): string => (s.method ? `${s.method} ${s.path} (authority "${s.authority}")` : `TCP connection to port ${s.port}`);

const md = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** A pull-request comment: the counts, then the top groups of each change with one example each. */
export function renderMarkdown(h: ReplayHeader, r: ReplayResult): string {
  const c = r.tally.counts;
  const out: string[] = [];
  const verdict = c.newly_denied + c.newly_allowed === 0 ? 'no request changes verdict' : `${c.newly_denied} newly denied, ${c.newly_allowed} newly allowed`;
  out.push(`### Policy replay: ${verdict}`, '');
  out.push(`${r.replayed} recorded requests decided again under \`${h.candidate.paths.join('`, `')}\`; baseline: ${md(baselineText(h, r))}.`, '');
  out.push('| | requests |', '|---|---:|');
  for (const [label, n] of countLines(r)) out.push(`| ${label} | ${n} |`);
  for (const kind of changeKinds) {
    const groups = r.tally.groups[kind].byRule.sorted();
    if (groups.length === 0) continue;
    out.push('', `<details${kind === 'newly_denied' ? ' open' : ''}><summary>${titles[kind]}: ${c[kind]}</summary>`, '');
    out.push('| requests | baseline -> candidate | example |', '|---:|---|---|');
    for (const g of groups.slice(0, SHOWN_GROUPS)) {
      const s = g.samples[0];
      const example = s ? `\`${s.method ? `${s.method} ${s.path}` : `TCP :${s.port}`}\` from \`${s.peer ?? 'plaintext'}\`${s.failing ? `<br>failing: ${s.failing.join('; ')}` : ''}` : '';
      out.push(`| ${g.count} | ${md(g.key)} | ${md(example)} |`);
    }
    if (groups.length > SHOWN_GROUPS) out.push('', `... and ${groups.length - SHOWN_GROUPS} more groups.`);
    out.push('', '</details>');
  }
  return out.join('\n') + '\n';
}
