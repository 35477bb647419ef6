// Owns `npm run loadtest` / `npm run loadtest:quick`: starts the upstream, nginx and Portcullis on loopback,
// runs every point interleaved across setups (A B C A B C ...), samples CPU and RSS, writes results + chart.
// Usage: node loadtest/run.mjs [--profile quick|full] [--dist dist] [--setups a,b] [--points p,q] [--out DIR]
//        [--repetitions N] [--duration S] [--node-options='--flag ...'] [--baseline-dist DIR] [--keep]
// Portcullis runs as shipped (no extra Node flags) unless --node-options adds some.   (overrides are for trying things out; results say what ran)

import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { fetch } from 'undici';
import { pointSpec, runLoader } from './lib/drive.mjs';
import { createEnvironment, SETUP_CATALOG } from './lib/env.mjs';
import { createSampler, loadAverage, measureIdle } from './lib/procfs.mjs';
import { POINTS, PROFILES } from './lib/plan.mjs';
import { renderMarkdown, renderSvg, summarize } from './lib/report.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const { values: args } = parseArgs({
  options: {
    profile: { type: 'string', default: 'quick' },
    dist: { type: 'string', default: join(here, '..', 'dist') },
    setups: { type: 'string' },
    points: { type: 'string' },
    out: { type: 'string', default: join(here, 'results') },
    keep: { type: 'boolean', default: false },
    repetitions: { type: 'string' },
    duration: { type: 'string' },
    'node-options': { type: 'string' },
    'baseline-dist': { type: 'string' },
  },
});

const profile = PROFILES[args.profile] && {
  ...PROFILES[args.profile],
  ...(args.repetitions ? { repetitions: Number(args.repetitions) } : {}),
};
if (!profile) {
  process.stderr.write(`unknown --profile ${args.profile}; use ${Object.keys(PROFILES).join(' or ')}\n`);
  process.exit(2);
}
const log = (msg) => process.stderr.write(`[loadtest ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

const onlySetups = args.setups ? new Set(args.setups.split(',')) : null;
const onlyPoints = args.points ? new Set(args.points.split(',')) : null;
const plan = profile.points
  .filter((p) => !onlyPoints || onlyPoints.has(p.point))
  // --baseline-dist runs the same build's predecessor beside pc-10 in every round (before/after in one run).
  .map((p) => ({ ...p, setups: args['baseline-dist'] ? p.setups.flatMap((s) => (s === 'pc-10' ? [s, 'pc-10-baseline'] : [s])) : p.setups }))
  // --setups names the setups to keep; pc-10 brings its --baseline-dist twin along.
  .map((p) => ({ ...p, ...(args.duration ? { durationS: Number(args.duration) } : {}), setups: p.setups.filter((s) => !onlySetups || onlySetups.has(s) || (s === 'pc-10-baseline' && onlySetups.has('pc-10'))) }))
  .filter((p) => p.setups.length > 0);
const setupNames = [...new Set(plan.flatMap((p) => p.setups))];
const startedAt = new Date();
const stamp = startedAt.toISOString().slice(0, 16).replace(':', '') + 'Z';
const tmp = mkdtempSync(join(os.tmpdir(), 'portcullis-loadtest-'));
log(`profile ${args.profile}: ${plan.length} points, setups ${setupNames.join(', ')}, ${profile.repetitions} repetitions; temp dir ${tmp}`);
log(`load average before start: ${JSON.stringify(loadAverage())} on ${os.cpus().length} CPUs`);

let env;
let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => { interrupted = true; log(`${signal}: finishing the current run, then stopping everything`); });
}

/** One loader run; CPU/RSS of the setup's servers sampled between its MEASURE markers. */
async function runMeasured(spec, serverPids, upstreamPid) {
  const proxy = createSampler(serverPids);
  const upstream = createSampler(() => [upstreamPid]);
  let servers = null;
  const loader = await runLoader(spec, {
    onMeasureStart: () => { proxy.start(); upstream.start(); },
    onMeasureEnd: () => { servers = { proxy: proxy.stop(), upstream: upstream.stop() }; },
  });
  return { loader, servers: servers ?? { proxy: proxy.stop(), upstream: upstream.stop() } };
}

const runs = [];
const decisionLogDropped = {};
const idle = {};
try {
  env = await createEnvironment({ dist: resolve(args.dist), baselineDist: args['baseline-dist'] && resolve(args['baseline-dist']), tmp, setups: setupNames, log, nodeOptions: args['node-options'] === undefined ? undefined : args['node-options'].split(' ').filter(Boolean) });
  log(`Portcullis runs with node ${env.info.portcullisNodeFlags.join(' ') || '(no extra flags)'}`);
  log(`started: upstream ${JSON.stringify(env.info.upstream.ports)}; ${Object.keys(env.info.setups).join(', ')}`);
  // One untimed pass per setup first, so V8 has compiled the hot paths before any measured run.
  for (const setupName of setupNames) {
    const setup = env.info.setups[setupName];
    if (!setup || profile.prewarmS <= 0 || interrupted) continue;
    const point = POINTS['h1-get-sat'];
    const spec = pointSpec(point, setup, { durationS: profile.prewarmS, warmupS: 0 });
    try {
      const r = await runMeasured(spec, setup.pids, env.upstreamPid);
      log(`pre-warm ${setupName}: ${Math.round(r.loader.rps)}/s (not recorded)`);
    } catch (err) {
      log(`pre-warm ${setupName} failed: ${err.message}`);
    }
  }
  // Idle: every server at once, no traffic, after the pre-warm (timers and polls are what is left), in
  // 10 s windows over one 30 s safety-poll cycle. V8's memory reducer collects once traffic has stopped,
  // a one-off after every busy period that can land in any window: the median window is the headline,
  // the mean over all windows is recorded beside it.
  if (profile.idleS > 0 && !interrupted) {
    await new Promise((r) => setTimeout(r, profile.idleSettleS * 1000));
    const load0 = loadAverage();
    const servers = Object.entries(env.info.setups).filter(([, s]) => s.pids().length > 0);
    const windows = Object.fromEntries(servers.map(([name]) => [name, []]));
    for (let w = 0; w < Math.max(1, Math.round(profile.idleS / 10)) && !interrupted; w++) {
      const measured = await Promise.all(servers.map(async ([name, s]) => [name, await measureIdle(s.pids, Math.min(10, profile.idleS))]));
      for (const [name, r] of measured) windows[name].push(r);
    }
    const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
    const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
    for (const [name, ws] of Object.entries(windows)) {
      if (ws.length === 0) continue;
      const r = {
        seconds: ws.reduce((a, w) => a + w.seconds, 0),
        cpu_ms_per_s: median(ws.map((w) => w.cpu_ms_per_s)),
        wakeups_per_s: median(ws.map((w) => w.wakeups_per_s)),
        involuntary_per_s: median(ws.map((w) => w.involuntary_per_s)),
        mean_cpu_ms_per_s: mean(ws.map((w) => w.cpu_ms_per_s)),
        mean_wakeups_per_s: mean(ws.map((w) => w.wakeups_per_s)),
        windows: ws,
      };
      idle[name] = { ...r, load_average_1m: load0?.one };
      log(`idle ${name}: median 10 s window ${r.cpu_ms_per_s.toFixed(2)} ms CPU/s, ${r.wakeups_per_s.toFixed(1)} wake-ups/s (all threads); `
        + `mean over ${r.seconds.toFixed(0)} s ${r.mean_cpu_ms_per_s.toFixed(2)} ms/s, ${r.mean_wakeups_per_s.toFixed(1)}/s; load ${load0?.one}`);
    }
  }
  const total = plan.reduce((a, p) => a + p.setups.filter((s) => env.info.setups[s]).length, 0) * profile.repetitions;
  let n = 0;
  outer:
  for (const p of plan) {
    const point = POINTS[p.point];
    for (let rep = 1; rep <= profile.repetitions; rep++) {
      for (const setupName of p.setups) {
        if (interrupted) break outer;
        const setup = env.info.setups[setupName];
        if (!setup) continue;
        n++;
        const spec = pointSpec(point, setup, { durationS: p.durationS, warmupS: p.warmupS });
        const load0 = loadAverage();
        const t0 = new Date();
        try {
          const r = await runMeasured(spec, setup.pids, env.upstreamPid);
          const wall = r.loader.wall_s;
          const record = {
            point: p.point, setup: setupName, rep, started: t0.toISOString(), load_average_before: load0, load_average_after: loadAverage(),
            loader: r.loader,
            proxy: { cpu_s: r.servers.proxy.cpuS, vcpu: r.servers.proxy.cpuS / wall, peak_rss_mb: r.servers.proxy.peakRssMb },
            upstream: { cpu_s: r.servers.upstream.cpuS, vcpu: r.servers.upstream.cpuS / wall, peak_rss_mb: r.servers.upstream.peakRssMb },
            loader_vcpu: r.loader.loader_cpu_s / wall,
          };
          runs.push(record);
          const lat = r.loader.latency;
          log(`[${n}/${total}] ${p.point} #${rep} ${setupName}: ${Math.round(r.loader.rps)}/s${r.loader.messages_per_s && point.loader.kind === 'grpc-stream' ? ` (${Math.round(r.loader.messages_per_s)} msg/s)` : ''}`
            + ` p50 ${lat.p50_ms?.toFixed(2)} p99 ${lat.p99_ms?.toFixed(2)} ms, errors ${r.loader.errors + r.loader.non2xx},`
            + ` proxy ${record.proxy.vcpu.toFixed(2)} vCPU ${record.proxy.peak_rss_mb.toFixed(0)} MB, loader ${record.loader_vcpu.toFixed(2)} vCPU, load ${load0?.one}`);
        } catch (err) {
          log(`[${n}/${total}] ${p.point} #${rep} ${setupName}: FAILED ${err.message}`);
          runs.push({ point: p.point, setup: setupName, rep, started: t0.toISOString(), load_average_before: load0, error: err.message });
        }
      }
    }
  }
  // The decision log must not flatter the figures by dropping lines: record what each sidecar dropped.
  for (const [setupName, setup] of Object.entries(env.info.setups)) {
    for (const [sidecar, port] of Object.entries(setup.admins ?? {})) {
      try {
        const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
        const dropped = Number(/^portcullis_decision_log_dropped_total (\S+)/m.exec(text)?.[1] ?? NaN);
        decisionLogDropped[sidecar] = dropped;
        if (dropped > 0) log(`${setupName}: ${sidecar} dropped ${dropped} decision log lines`);
      } catch (err) {
        log(`cannot read ${sidecar} metrics: ${err.message}`);
      }
    }
  }
} catch (err) {
  log(`cannot run: ${err.stack ?? err.message}`);
  process.exitCode = 1;
} finally {
  if (env) await env.stop();
}

if (runs.length > 0) {
  const meta = {
    profile: args.profile,
    started: startedAt.toISOString(),
    finished: new Date().toISOString(),
    host: { cpus: os.cpus().length, cpu_model: os.cpus()[0]?.model, total_mem_mb: Math.round(os.totalmem() / 1048576), kernel: os.release() },
    load_average_at_end: loadAverage(),
    versions: env?.info.versions ?? {},
    repetitions: profile.repetitions,
    setups: Object.fromEntries(setupNames.map((s) => [s, SETUP_CATALOG[s].label])),
    points: Object.fromEntries(plan.map((p) => [p.point, { ...POINTS[p.point], durationS: p.durationS, warmupS: p.warmupS, setups: p.setups }])),
    decision_log_dropped: decisionLogDropped,
    idle,
    portcullis_node_flags: env?.info.portcullisNodeFlags ?? null,
    baseline_dist: args['baseline-dist'] ?? null,
    overrides: { setups: args.setups ?? null, points: args.points ?? null, repetitions: args.repetitions ?? null, duration: args.duration ?? null },
    note: 'Loader, proxy and upstream share this machine\'s CPUs with each other (and with anything else running): see load_average_* in every run.',
  };
  const summary = summarize(runs, meta);
  mkdirSync(args.out, { recursive: true });
  const prefix = `${stamp}-${args.profile}`;
  for (const s of setupNames) {
    writeFileSync(join(args.out, `${prefix}-${s}.json`), JSON.stringify({ meta, setup: s, label: SETUP_CATALOG[s].label, runs: runs.filter((r) => r.setup === s) }, null, 1) + '\n');
  }
  writeFileSync(join(args.out, `${prefix}-summary.json`), JSON.stringify(summary, null, 1) + '\n');
  const md = renderMarkdown(summary, { chart: `${prefix}-chart.svg`, prefix });
  writeFileSync(join(args.out, `${prefix}-summary.md`), md);
  writeFileSync(join(args.out, `${prefix}-chart.svg`), renderSvg(summary));
  copyFileSync(join(args.out, `${prefix}-chart.svg`), join(args.out, 'latest.svg'));
  writeFileSync(join(args.out, 'latest.md'), renderMarkdown(summary, { chart: 'latest.svg', prefix }));
  log(`wrote ${join(args.out, `${prefix}-summary.md`)} (+ per-setup JSON, chart, latest.md, latest.svg)`);
  process.stdout.write(md);
}
if (!args.keep) rmSync(tmp, { recursive: true, force: true });
else log(`kept ${tmp}`);
