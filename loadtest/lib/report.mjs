// Owns turning raw load-test runs into medians, paired ratios and target verdicts, and rendering them
// as a Markdown summary and a self-made SVG chart (throughput bars with ratios, latency percentile lines).

const median = (xs) => {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};
const minMax = (xs) => {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x));
  return v.length ? [Math.min(...v), Math.max(...v)] : null;
};

/** Per point and setup: medians over repetitions, plus every run's figures for the record. */
export function summarize(runs, meta) {
  const ok = runs.filter((r) => !r.error);
  const groups = {};
  for (const r of ok) ((groups[r.point] ??= {})[r.setup] ??= []).push(r);
  const points = {};
  for (const [point, bySetup] of Object.entries(groups)) {
    points[point] = {};
    for (const [setup, rs] of Object.entries(bySetup)) {
      const lat = (k) => median(rs.map((r) => r.loader.latency?.[k]));
      points[point][setup] = {
        n: rs.length,
        rps: median(rs.map((r) => r.loader.rps)),
        rps_range: minMax(rs.map((r) => r.loader.rps)),
        messages_per_s: median(rs.map((r) => r.loader.messages_per_s)),
        latency_ms: { p50: lat('p50_ms'), p90: lat('p90_ms'), p99: lat('p99_ms'), p999: lat('p999_ms'), max: lat('max_ms') },
        errors: rs.reduce((a, r) => a + r.loader.errors + r.loader.non2xx, 0),
        proxy_vcpu: median(rs.map((r) => r.proxy.vcpu)),
        proxy_vcpu_per_1000_rps: median(rs.map((r) => (r.loader.rps > 0 ? r.proxy.vcpu / (r.loader.rps / 1000) : null))),
        proxy_peak_rss_mb: median(rs.map((r) => r.proxy.peak_rss_mb)),
        proxy_peak_rss_mb_max: Math.max(...rs.map((r) => r.proxy.peak_rss_mb)),
        upstream_vcpu: median(rs.map((r) => r.upstream.vcpu)),
        loader_vcpu: median(rs.map((r) => r.loader_vcpu)),
        load_average_1m: minMax(rs.map((r) => r.load_average_before?.one)),
        by_rep: Object.fromEntries(rs.map((r) => [r.rep, r])),
      };
    }
  }

  /** Median over repetitions of a per-round comparison (A and B ran back to back in the same round). */
  const paired = (point, a, b, f) => {
    const A = points[point]?.[a];
    const B = points[point]?.[b];
    if (!A || !B) return null;
    const vals = Object.keys(A.by_rep).filter((rep) => B.by_rep[rep]).map((rep) => f(A.by_rep[rep], B.by_rep[rep]));
    const m = median(vals);
    return m === null ? null : { median: m, range: minMax(vals), n: vals.length };
  };
  const rpsRatio = (point, a, b) => paired(point, a, b, (x, y) => x.loader.rps / y.loader.rps);
  const added = (point, a, k) => paired(point, a, 'direct', (x, y) => x.loader.latency[k] - y.loader.latency[k]);
  const get = (point, setup) => points[point]?.[setup];
  const cpuPer1000 = (point, setup) => get(point, setup)?.proxy_vcpu_per_1000_rps ?? null;
  const cpuCost = (point, a, b) => {
    const x = cpuPer1000(point, a);
    const y = cpuPer1000(point, b);
    return x !== null && y !== null && y > 0 ? x / y - 1 : null;
  };

  const ratios = {
    throughput_vs_nginx: {},
    throughput_vs_direct: {},
    added_latency_ms: {},
    vcpu_per_1000_rps: {},
    rss_mb_at_1000_rps: {},
    costs: {},
  };
  for (const point of Object.keys(points).filter((p) => meta.points[p]?.model === 'saturation')) {
    for (const s of Object.keys(points[point])) {
      if (s !== 'nginx' && points[point].nginx) (ratios.throughput_vs_nginx[point] ??= {})[s] = rpsRatio(point, s, 'nginx');
      if (s !== 'direct' && points[point].direct) (ratios.throughput_vs_direct[point] ??= {})[s] = rpsRatio(point, s, 'direct');
    }
  }
  for (const point of Object.keys(points).filter((p) => meta.points[p]?.model === 'rate')) {
    for (const s of Object.keys(points[point])) {
      if (s !== 'direct' && points[point].direct) (ratios.added_latency_ms[point] ??= {})[s] = { p50: added(point, s, 'p50_ms'), p99: added(point, s, 'p99_ms') };
      if (s !== 'direct') (ratios.vcpu_per_1000_rps[point] ??= {})[s] = cpuPer1000(point, s);
      if (s !== 'direct') (ratios.rss_mb_at_1000_rps[point] ??= {})[s] = get(point, s)?.proxy_peak_rss_mb ?? null;
    }
  }
  for (const [name, setup, base = 'pc-10'] of [['rules_1000_vs_10', 'pc-1000'], ['jwt', 'pc-jwt'], ['audit', 'pc-audit'], ['second_sidecar', 'pc-mesh'], ['replayable_capture', 'pc-capture', 'pc-capture-minimal']]) {
    const t = rpsRatio('h1-get-sat', setup, base);
    ratios.costs[name] = {
      throughput_loss: t ? { median: 1 - t.median, range: t.range ? [1 - t.range[1], 1 - t.range[0]] : null } : null,
      cpu_per_request_increase_at_saturation: cpuCost('h1-get-sat', setup, base),
      cpu_per_request_increase_at_1000: cpuCost('h1-get-rate1000', setup, base),
      cpu_per_request_increase_at_5000: cpuCost('h1-get-rate5000', setup, base),
    };
  }

  // Against the bare Node proxy (same run): CPU per request (paired per round), peak RSS, added p99.
  const cpuPerRequest = (r) => (r.loader.rps > 0 ? r.proxy.vcpu / r.loader.rps : null);
  ratios.vs_bare = {};
  for (const point of Object.keys(points).filter((p) => points[p].bare)) {
    const row = {};
    for (const s of Object.keys(points[point]).filter((x) => x !== 'bare' && x !== 'direct' && x !== 'nginx')) {
      const cpu = paired(point, s, 'bare', (x, y) => cpuPerRequest(x) / cpuPerRequest(y));
      const entry = { cpu_per_request: cpu };
      if (meta.points[point]?.model === 'rate') {
        entry.peak_rss_mb_over_bare = paired(point, s, 'bare', (x, y) => x.proxy.peak_rss_mb - y.proxy.peak_rss_mb);
        const a = ratios.added_latency_ms[point]?.[s]?.p99?.median;
        const b = ratios.added_latency_ms[point]?.bare?.p99?.median;
        entry.added_p99_ms = a ?? null;
        entry.bare_added_p99_ms = b ?? null;
        // A floor of 0.1 ms keeps a near-zero bare figure from turning noise into a huge ratio.
        entry.added_p99_ratio = a !== undefined && a !== null && b !== undefined && b !== null ? a / Math.max(b, 0.1) : null;
      }
      row[s] = entry;
    }
    ratios.vs_bare[point] = row;
  }

  const v = (x) => x?.median ?? x ?? null;
  // On loopback the direct path's p99 is well under a millisecond; when it is not, scheduler stalls from
  // other work on the machine dominate the tail and an "added p99" is noise, not the proxy.
  const directP99 = (point) => get(point, 'direct')?.latency_ms.p99 ?? null;
  const tailVerdict = (point, limit) => (x) => {
    const d = directP99(point);
    const verdict = x <= limit ? 'met' : 'MISSED';
    if (d !== null && d > 2) {
      const n = ratios.added_latency_ms[point]?.nginx?.p99?.median;
      return `${verdict}, noisy (direct p99 ${d.toFixed(1)} ms${n !== undefined && n !== null ? `; nginx added ${n.toFixed(2)} ms in the same run` : ''})`;
    }
    return x <= limit;
  };
  const targets = [
    { metric: 'Throughput vs nginx, mTLS + 10 rules + decision log (HTTP/1.1 GET)', value: v(ratios.throughput_vs_nginx['h1-get-sat']?.['pc-10']), unit: 'x', target: '>= 0.8x', pass: (x) => x >= 0.8, reference: '0.68-0.76x (bare Node proxy)' },
    { metric: 'Added p99 over direct at 1,000 rps', value: v(ratios.added_latency_ms['h1-get-rate1000']?.['pc-10']?.p99), nginx: v(ratios.added_latency_ms['h1-get-rate1000']?.nginx?.p99), unit: 'ms', target: '<= 0.5 ms', pass: tailVerdict('h1-get-rate1000', 0.5), reference: '0.47 ms (nginx 0.40)' },
    { metric: 'Added p99 over direct at 5,000 rps', value: v(ratios.added_latency_ms['h1-get-rate5000']?.['pc-10']?.p99), nginx: v(ratios.added_latency_ms['h1-get-rate5000']?.nginx?.p99), unit: 'ms', target: '<= 1.2 ms', pass: tailVerdict('h1-get-rate5000', 1.2), reference: '1.66 ms (nginx 0.57)' },
    { metric: 'Added p50 over direct at 1,000 rps', value: v(ratios.added_latency_ms['h1-get-rate1000']?.['pc-10']?.p50), nginx: v(ratios.added_latency_ms['h1-get-rate1000']?.nginx?.p50), unit: 'ms', target: 'no target' },
    { metric: 'Added p50 over direct at 5,000 rps', value: v(ratios.added_latency_ms['h1-get-rate5000']?.['pc-10']?.p50), nginx: v(ratios.added_latency_ms['h1-get-rate5000']?.nginx?.p50), unit: 'ms', target: 'no target' },
    { metric: 'vCPU per 1,000 rps (at 1,000 rps)', value: cpuPer1000('h1-get-rate1000', 'pc-10'), nginx: cpuPer1000('h1-get-rate1000', 'nginx'), unit: 'vCPU', target: '<= 0.15', pass: (x) => x <= 0.15, reference: '0.157 (nginx 0.072)' },
    { metric: 'vCPU per 1,000 rps (at 5,000 rps)', value: cpuPer1000('h1-get-rate5000', 'pc-10'), nginx: cpuPer1000('h1-get-rate5000', 'nginx'), unit: 'vCPU', target: '<= 0.15', pass: (x) => x <= 0.15, reference: '0.157 (nginx 0.072)' },
    { metric: 'Peak RSS at 1,000 rps', value: get('h1-get-rate1000', 'pc-10')?.proxy_peak_rss_mb ?? null, nginx: get('h1-get-rate1000', 'nginx')?.proxy_peak_rss_mb ?? null, unit: 'MB', target: '< 80 MB', pass: (x) => x < 80, reference: '81-107 MB' },
    { metric: 'Throughput cost of 1,000 rules vs 10', value: v(ratios.costs.rules_1000_vs_10.throughput_loss), unit: '%', target: '< 5%', pass: (x) => x < 0.05 },
    { metric: 'CPU per request, 1,000 rules vs 10 (at 1,000 rps)', value: ratios.costs.rules_1000_vs_10.cpu_per_request_increase_at_1000, unit: '%', target: '(< 5%)', pass: (x) => x < 0.05 },
    { metric: 'CPU per request, 1,000 rules vs 10 (saturation)', value: ratios.costs.rules_1000_vs_10.cpu_per_request_increase_at_saturation, unit: '%', target: '(< 5%)', pass: (x) => x < 0.05 },
    { metric: 'Throughput cost of JWT (cached key)', value: v(ratios.costs.jwt.throughput_loss), unit: '%', target: '< 15%', pass: (x) => x < 0.15 },
    { metric: 'CPU per request, JWT (at 1,000 rps)', value: ratios.costs.jwt.cpu_per_request_increase_at_1000, unit: '%', target: '(< 15%)', pass: (x) => x < 0.15 },
    { metric: 'CPU per request, JWT (saturation)', value: ratios.costs.jwt.cpu_per_request_increase_at_saturation, unit: '%', target: '(< 15%)', pass: (x) => x < 0.15 },
    { metric: 'vCPU per 1,000 requests at saturation (HTTP/1.1 GET)', value: cpuPer1000('h1-get-sat', 'pc-10'), nginx: cpuPer1000('h1-get-sat', 'nginx'), unit: 'vCPU', target: 'no target' },
    { metric: 'CPU per request, replayable vs minimal decision events (at 1,000 rps)', value: ratios.costs.replayable_capture.cpu_per_request_increase_at_1000, unit: '%', target: '<= 10%', pass: (x) => x <= 0.1 },
    { metric: 'CPU per request, replayable vs minimal decision events (saturation)', value: ratios.costs.replayable_capture.cpu_per_request_increase_at_saturation, unit: '%', target: '<= 10%', pass: (x) => x <= 0.1 },
    { metric: 'Throughput cost of audit mode (logged would-deny)', value: v(ratios.costs.audit.throughput_loss), unit: '%', target: 'no target' },
    { metric: 'Throughput, two sidecars vs one (mesh)', value: v(ratios.costs.second_sidecar.throughput_loss), unit: '%', target: 'no target' },
    ...[['h1-get-sat', 'HTTP/1.1 GET, saturation'], ['h1-get-rate1000', 'HTTP/1.1 GET at 1,000 rps'], ['h2-get-sat', 'HTTP/2 GET, saturation'], ['h2-get-rate1000', 'HTTP/2 GET at 1,000 rps'],
      ['grpc-unary-sat', 'gRPC unary, saturation'], ['grpc-unary-rate1000', 'gRPC unary at 1,000 calls/s']].flatMap(([point, title]) => {
      const e = ratios.vs_bare[point]?.['pc-10'];
      if (!e) return [];
      const rows = [{ metric: `CPU per request vs bare Node proxy, ${title}`, value: v(e.cpu_per_request), unit: 'x', target: '<= 1.15x', pass: (x) => x <= 1.15 }];
      if (meta.points[point]?.model === 'rate') {
        rows.push({ metric: `Peak RSS over bare Node proxy, ${title}`, value: v(e.peak_rss_mb_over_bare), unit: 'MB', target: '<= 15 MB', pass: (x) => x <= 15 });
        rows.push({ metric: `Added p99 vs bare's added p99, ${title} (Portcullis ${fmt(e.added_p99_ms)} ms, bare ${fmt(e.bare_added_p99_ms)} ms)`, value: e.added_p99_ratio, unit: 'x', target: '<= 1.5x', pass: tailVerdict(point, 1.5) });
      }
      return rows;
    }),
  ].map((t) => {
    const outcome = t.value === null || t.value === undefined ? 'not measured' : t.pass ? t.pass(t.value) : '-';
    return { ...t, verdict: outcome === true ? 'met' : outcome === false ? 'MISSED' : outcome, pass: undefined };
  });

  return { meta, points, ratios, targets };
}

// ---------------------------------------------------------------------------------------------------
// Markdown

const fmt = (x, digits = 2) => (x === null || x === undefined || Number.isNaN(x) ? '-' : Number(x).toFixed(digits));
const fmtInt = (x) => (x === null || x === undefined ? '-' : Math.round(x).toLocaleString('en-US'));
const fmtUnit = (x, unit) => {
  if (x === null || x === undefined) return '-';
  if (unit === '%') return `${(x * 100).toFixed(1)}%`;
  if (unit === 'x') return `${x.toFixed(2)}x`;
  if (unit === 'ms') return `${x.toFixed(2)} ms`;
  if (unit === 'MB') return `${x.toFixed(0)} MB`;
  return `${x.toFixed(3)}`;
};

export function renderMarkdown(summary, { chart, prefix }) {
  const { meta, points, ratios, targets } = summary;
  const setups = Object.keys(meta.setups);
  const loads = Object.values(points).flatMap((bySetup) => Object.values(bySetup).flatMap((g) => g.load_average_1m ?? []));
  const L = [];
  L.push(`# Portcullis load test: ${meta.started.slice(0, 16).replace('T', ' ')} UTC, profile \`${meta.profile}\``, '');
  L.push(`Machine: ${meta.host.cpus} CPUs (${meta.host.cpu_model}), ${meta.host.total_mem_mb} MB, Linux ${meta.host.kernel}. `
    + `Node ${meta.versions.node}; ${meta.versions.nginx ?? 'nginx not run'}; ${meta.versions.portcullis ?? 'Portcullis (dist/)'}`
    + `${meta.portcullis_node_flags ? ` with node ${meta.portcullis_node_flags.join(' ') || '(no flags)'}` : ''}. `
    + `Loader, proxy and upstream share the CPUs. **One-minute load average during the runs: ${loads.length ? `${Math.min(...loads).toFixed(1)}-${Math.max(...loads).toFixed(1)}` : '-'}** `
    + `(anything above ${meta.host.cpus} means other work competed for the CPUs; compare ratios from the same run, not absolute figures across runs).`, '');
  L.push(`${meta.repetitions} repetitions per point, setups interleaved; medians shown, ratios are medians of per-round pairs. Raw figures: \`${prefix}-<setup>.json\`.`, '');
  L.push(`![throughput and latency](${chart})`, '');
  L.push('## Targets', '', '| Metric | Portcullis | nginx | Target | Verdict | Bare Node proxy (reference) |', '|---|---|---|---|---|---|');
  for (const t of targets) L.push(`| ${t.metric} | ${fmtUnit(t.value, t.unit)} | ${t.nginx !== undefined ? fmtUnit(t.nginx, t.unit) : ''} | ${t.target} | ${t.verdict} | ${t.reference ?? ''} |`);
  L.push('');

  if (Object.keys(ratios.vs_bare ?? {}).length > 0) {
    L.push('## Against the bare Node proxy (reference: node:https + undici / node:http2, one path rule, no identity, no log)', '');
    L.push('| Point | Setup | CPU per request vs bare (paired, range) | peak RSS over bare MB | added p99 ms (bare) |', '|---|---|---|---|---|');
    for (const [point, row] of Object.entries(ratios.vs_bare)) {
      for (const [s, e] of Object.entries(row)) {
        const c = e.cpu_per_request;
        L.push(`| ${point} | \`${s}\` | ${c ? `${fmt(c.median)}x (${fmt(c.range?.[0])}-${fmt(c.range?.[1])})` : '-'} | ${e.peak_rss_mb_over_bare ? fmt(e.peak_rss_mb_over_bare.median, 1) : ''} | ${e.added_p99_ms !== undefined ? `${fmt(e.added_p99_ms)} (${fmt(e.bare_added_p99_ms)})` : ''} |`);
      }
    }
    L.push('');
  }
  if (meta.idle && Object.keys(meta.idle).length > 0) {
    L.push('## Idle (no traffic, after the pre-warm; all threads; median 10 s window, mean over all windows)', '', '| Setup | CPU ms per s | wake-ups per s (voluntary context switches) | involuntary per s | mean CPU ms per s / wake-ups per s | seconds | load avg 1m |', '|---|---|---|---|---|---|---|');
    for (const [s, r] of Object.entries(meta.idle)) L.push(`| \`${s}\` | ${fmt(r.cpu_ms_per_s)} | ${fmt(r.wakeups_per_s, 1)} | ${fmt(r.involuntary_per_s, 1)} | ${r.mean_cpu_ms_per_s === undefined ? '-' : `${fmt(r.mean_cpu_ms_per_s)} / ${fmt(r.mean_wakeups_per_s, 1)}`} | ${fmt(r.seconds, 1)} | ${r.load_average_1m ?? '-'} |`);
    L.push('');
  }
  L.push('## Throughput at saturation (requests/s, median)', '');
  const satPoints = Object.keys(points).filter((p) => meta.points[p].model === 'saturation');
  L.push(`| Workload | ${setups.map((s) => `\`${s}\``).join(' | ')} |`, `|---|${setups.map(() => '---').join('|')}|`);
  for (const p of satPoints) {
    const cells = setups.map((s) => {
      const g = points[p][s];
      if (!g) return '';
      const n = ratios.throughput_vs_nginx[p]?.[s]?.median;
      const d = ratios.throughput_vs_direct[p]?.[s]?.median;
      const msgs = meta.points[p].loader.kind === 'grpc-stream' ? ` (${fmtInt(g.messages_per_s)} msg/s)` : '';
      return `${fmtInt(g.rps)}${msgs}${n !== undefined && n !== null ? ` · ${fmt(n)}x nginx` : ''}${d !== undefined && d !== null ? ` · ${fmt(d)}x direct` : ''}${g.errors ? ` · ${g.errors} errors` : ''}`;
    });
    L.push(`| ${meta.points[p].title} | ${cells.join(' | ')} |`);
  }
  L.push('');

  L.push('## Proxy CPU per 1,000 requests/s (vCPU, median; mesh = both sidecars)', '');
  const proxied = setups.filter((s) => s !== 'direct');
  L.push(`| Point | ${proxied.map((s) => `\`${s}\``).join(' | ')} |`, `|---|${proxied.map(() => '---').join('|')}|`);
  for (const p of Object.keys(points)) {
    L.push(`| ${p} | ${proxied.map((s) => (points[p][s] ? fmt(points[p][s].proxy_vcpu_per_1000_rps, 3) : '')).join(' | ')} |`);
  }
  L.push('');

  for (const p of Object.keys(points).filter((x) => meta.points[x].model === 'rate')) {
    L.push(`## ${meta.points[p].title}`, '');
    L.push('| Setup | achieved/s | p50 ms | p90 ms | p99 ms | p99.9 ms | added p50 | added p99 | proxy vCPU | vCPU per 1,000 rps | peak RSS MB | errors |', '|---|---|---|---|---|---|---|---|---|---|---|---|');
    for (const s of setups) {
      const g = points[p][s];
      if (!g) continue;
      const a = ratios.added_latency_ms[p]?.[s];
      L.push(`| \`${s}\` | ${fmtInt(g.rps)} | ${fmt(g.latency_ms.p50)} | ${fmt(g.latency_ms.p90)} | ${fmt(g.latency_ms.p99)} | ${fmt(g.latency_ms.p999)} | ${fmt(a?.p50?.median)} | ${fmt(a?.p99?.median)} | ${fmt(g.proxy_vcpu, 3)} | ${s === 'direct' ? '-' : fmt(g.proxy_vcpu_per_1000_rps, 3)} | ${s === 'direct' ? '-' : fmt(g.proxy_peak_rss_mb, 0)} | ${g.errors} |`);
    }
    L.push('');
  }

  L.push('## CPU and memory per point (medians)', '', '| Point | Setup | proxy vCPU | proxy peak RSS MB | upstream vCPU | loader vCPU | load avg 1m |', '|---|---|---|---|---|---|---|');
  for (const p of Object.keys(points)) {
    for (const s of setups) {
      const g = points[p][s];
      if (!g) continue;
      L.push(`| ${p} | \`${s}\` | ${fmt(g.proxy_vcpu, 3)} | ${s === 'direct' ? '-' : fmt(g.proxy_peak_rss_mb, 0)} | ${fmt(g.upstream_vcpu, 3)} | ${fmt(g.loader_vcpu, 3)} | ${g.load_average_1m ? `${g.load_average_1m[0]}-${g.load_average_1m[1]}` : '-'} |`);
    }
  }
  L.push('', '## Setups', '');
  for (const s of setups) L.push(`- \`${s}\`: ${meta.setups[s]}`);
  L.push('');
  return L.join('\n');
}

// ---------------------------------------------------------------------------------------------------
// SVG

const COLORS = { direct: '#7f7f7f', nginx: '#2ca02c', bare: '#bcbd22', 'pc-10': '#1f77b4', 'pc-1000': '#9467bd', 'pc-jwt': '#ff7f0e', 'pc-audit': '#8c564b', 'pc-mesh': '#d62728' };
const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function renderSvg(summary) {
  const { meta, points, ratios } = summary;
  const setups = Object.keys(meta.setups);
  const W = 980;
  const out = [];
  let y = 30;
  out.push(`<text x="20" y="${y}" font-size="16" font-weight="bold">Portcullis load test, ${esc(meta.started.slice(0, 16).replace('T', ' '))} UTC (${esc(meta.profile)}; ${meta.host.cpus} CPUs shared by loader, proxy and upstream)</text>`);
  y += 28;
  out.push(`<text x="20" y="${y}" font-size="13" font-weight="bold">Throughput at saturation (median requests/s; ratio vs nginx and vs direct, paired per round)</text>`);
  y += 12;
  const satPoints = Object.keys(points).filter((p) => meta.points[p].model === 'saturation');
  const labelW = 90;
  const barX = 20 + labelW;
  const barMax = 520;
  for (const p of satPoints) {
    y += 18;
    out.push(`<text x="20" y="${y}" font-size="12" font-style="italic">${esc(meta.points[p].title)}</text>`);
    const present = setups.filter((s) => points[p][s]);
    const max = Math.max(...present.map((s) => points[p][s].rps));
    for (const s of present) {
      y += 17;
      const g = points[p][s];
      const w = Math.max(1, (g.rps / max) * barMax);
      const n = ratios.throughput_vs_nginx[p]?.[s]?.median;
      const d = ratios.throughput_vs_direct[p]?.[s]?.median;
      const label = `${fmtInt(g.rps)}/s${n ? `  ${fmt(n)}x nginx` : ''}${d ? `  ${fmt(d)}x direct` : ''}${g.errors ? `  (${g.errors} errors)` : ''}`;
      out.push(`<text x="${barX - 6}" y="${y}" font-size="11" text-anchor="end">${esc(s)}</text>`);
      out.push(`<rect x="${barX}" y="${y - 11}" width="${w.toFixed(1)}" height="13" fill="${COLORS[s] ?? '#444'}"/>`);
      out.push(`<text x="${barX + w + 6}" y="${y}" font-size="11">${esc(label)}</text>`);
    }
  }

  const ratePoints = Object.keys(points).filter((p) => meta.points[p].model === 'rate');
  if (ratePoints.length) {
    y += 40;
    out.push(`<text x="20" y="${y}" font-size="13" font-weight="bold">Latency at a fixed arrival rate (median over repetitions, log scale, measured from the scheduled send time)</text>`);
    y += 20;
    const pw = (W - 60) / ratePoints.length;
    const ph = 220;
    const qs = [['p50', 'p50'], ['p90', 'p90'], ['p99', 'p99'], ['p999', 'p99.9']];
    ratePoints.forEach((p, i) => {
      const x0 = 60 + i * pw;
      const present = setups.filter((s) => points[p][s]);
      const vals = present.flatMap((s) => qs.map(([k]) => points[p][s].latency_ms[k])).filter((v) => v > 0);
      const lo = Math.pow(10, Math.floor(Math.log10(Math.min(...vals))));
      const hi = Math.pow(10, Math.ceil(Math.log10(Math.max(...vals))));
      const yOf = (v) => y + ph - ((Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * ph;
      const xOf = (j) => x0 + 20 + j * ((pw - 120) / (qs.length - 1));
      out.push(`<text x="${x0}" y="${y - 4}" font-size="12" font-style="italic">${esc(meta.points[p].title)}</text>`);
      out.push(`<rect x="${x0}" y="${y}" width="${pw - 80}" height="${ph}" fill="none" stroke="#ccc"/>`);
      for (let d = lo; d <= hi * 1.0001; d *= 10) {
        out.push(`<line x1="${x0}" x2="${x0 + pw - 80}" y1="${yOf(d).toFixed(1)}" y2="${yOf(d).toFixed(1)}" stroke="#eee"/>`);
        out.push(`<text x="${x0 - 4}" y="${(yOf(d) + 4).toFixed(1)}" font-size="10" text-anchor="end">${d >= 1 ? d : d.toPrecision(1)} ms</text>`);
      }
      qs.forEach(([, label], j) => out.push(`<text x="${xOf(j)}" y="${y + ph + 14}" font-size="10" text-anchor="middle">${label}</text>`));
      present.forEach((s, k) => {
        const pts = qs.map(([q], j) => `${xOf(j).toFixed(1)},${yOf(points[p][s].latency_ms[q]).toFixed(1)}`).join(' ');
        out.push(`<polyline points="${pts}" fill="none" stroke="${COLORS[s] ?? '#444'}" stroke-width="2"/>`);
        out.push(`<text x="${x0 + pw - 76}" y="${y + 12 + k * 13}" font-size="10" fill="${COLORS[s] ?? '#444'}">${esc(s)}</text>`);
      });
    });
    y += ph + 30;
  }
  y += 10;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${y}" viewBox="0 0 ${W} ${y}" font-family="sans-serif">\n<rect width="100%" height="100%" fill="white"/>\n${out.join('\n')}\n</svg>\n`;
}
