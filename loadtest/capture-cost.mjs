#!/usr/bin/env node
// What replayable decision events cost per request: the pc-capture and pc-capture-minimal sidecars (same
// policy, JWT and six typical headers; decisionLogCapture replayable vs minimal) each get the same fixed
// number of requests per round, rounds alternating A B A B ..., and the CPU time of each sidecar over its
// rounds (/proc schedstat) is divided by its requests: a count-based, interleaved comparison that a shared,
// loaded machine disturbs less than a timed saturation run. Usage: node loadtest/capture-cost.mjs [--rounds 12] [--requests 3000]
import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Agent, request } from 'undici';
import { createEnvironment } from './lib/env.mjs';
import { loadAverage, preciseCpuSeconds } from './lib/procfs.mjs';

const { values: args } = parseArgs({ options: { rounds: { type: 'string', default: '12' }, requests: { type: 'string', default: '3000' }, concurrency: { type: 'string', default: '8' }, dist: { type: 'string', default: 'dist' } } });
const rounds = Number(args.rounds);
const perRound = Number(args.requests);
const concurrency = Number(args.concurrency);
const setups = ['pc-capture', 'pc-capture-minimal'];
const tmp = mkdtempSync(join(tmpdir(), 'portcullis-capture-cost-'));
const log = (m) => process.stderr.write(`[capture-cost] ${m}\n`);

const env = await createEnvironment({ dist: resolve(args.dist), tmp, setups, log });
try {
  const clients = Object.fromEntries(setups.map((name) => {
    const s = env.info.setups[name];
    const tls = s.endpoints.h1.tls;
    const agent = new Agent({ connections: concurrency, connect: { ca: readFileSync(tls.ca), cert: readFileSync(tls.cert), key: readFileSync(tls.key), servername: tls.servername } });
    return [name, { url: `${s.endpoints.h1.url}/api/items`, headers: s.headers, agent, pid: s.pids()[0] }];
  }));
  async function send(c, n) {
    let next = 0;
    let failed = 0;
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (next < n) {
        next++;
        const res = await request(c.url, { dispatcher: c.agent, headers: c.headers });
        await res.body.dump();
        if (res.statusCode !== 200) failed++;
      }
    }));
    if (failed > 0) throw new Error(`${failed} requests were not answered 200`);
  }
  // Warm-up: JIT, TLS sessions and connections, untimed.
  for (const name of setups) await send(clients[name], perRound);
  const perRequestUs = Object.fromEntries(setups.map((s) => [s, []]));
  const load0 = loadAverage();
  for (let r = 0; r < rounds; r++) {
    for (const name of r % 2 === 0 ? setups : [...setups].reverse()) {
      const c = clients[name];
      const cpu0 = preciseCpuSeconds(c.pid);
      await send(c, perRound);
      // The decision log is written in batches within 100 ms: its cost lands in this round.
      await new Promise((res) => setTimeout(res, 150));
      perRequestUs[name].push(((preciseCpuSeconds(c.pid) - cpu0) * 1e6) / perRound);
    }
  }
  const load1 = loadAverage();
  const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
  const ratios = perRequestUs['pc-capture'].map((x, i) => x / perRequestUs['pc-capture-minimal'][i]);
  const result = {
    rounds, requests_per_round: perRound, concurrency,
    cpu_us_per_request: Object.fromEntries(setups.map((s) => [s, { median: median(perRequestUs[s]), all: perRequestUs[s].map((x) => Math.round(x)) }])),
    replayable_over_minimal: { median: median(ratios), min: Math.min(...ratios), max: Math.max(...ratios) },
    load_average: { before: load0, after: load1 },
    log_bytes_per_event: Object.fromEntries(setups.map((s) => {
      const file = join(tmp, s, 'decisions.ndjson');
      const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
      return [s, Math.round(lines.reduce((n, l) => n + l.length + 1, 0) / lines.length)];
    })),
  };
  process.stdout.write(JSON.stringify(result, null, 1) + '\n');
  log(`replayable vs minimal: CPU per request x${result.replayable_over_minimal.median.toFixed(3)} (median of ${rounds} paired rounds; range ${result.replayable_over_minimal.min.toFixed(3)}-${result.replayable_over_minimal.max.toFixed(3)}), load average ${load0?.one} -> ${load1?.one}`);
  await Promise.all(Object.values(clients).map((c) => c.agent.close()));
} finally {
  await env.stop();
  rmSync(tmp, { recursive: true, force: true });
}
