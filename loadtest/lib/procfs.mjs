// Owns reading a process's CPU time and resident memory from /proc (Linux), for the servers under load.
// CPU is utime+stime of the process (all its threads); RSS is VmRSS, peak is VmHWM.

import { readFileSync, readdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

let ticksPerSecond = 100;
try {
  ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
} catch { /* Linux default */ }

/** CPU seconds (user+system) used so far by `pid`, or null when it is gone. */
export function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name, which may itself contain spaces.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) / ticksPerSecond;
  } catch {
    return null;
  }
}

/** { rssMb, hwmMb } from /proc/<pid>/status, or null when it is gone. */
export function memory(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (name) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
    return { rssMb: kb('VmRSS') / 1024, hwmMb: kb('VmHWM') / 1024 };
  } catch {
    return null;
  }
}

/** Children of `pid` (nginx workers under their master). */
export function childPids(pid) {
  const out = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(name));
    } catch { /* exited meanwhile */ }
  }
  return out;
}

export function loadAverage() {
  try {
    const [one, five, fifteen] = readFileSync('/proc/loadavg', 'utf8').split(' ').map(Number);
    return { one, five, fifteen };
  } catch {
    return null;
  }
}

/**
 * Samples a group of pids every `intervalMs`: CPU seconds between start() and stop(), and the largest
 * summed RSS seen in between.
 */
export function createSampler(pidsOf, intervalMs = 100) {
  let timer = null;
  let cpu0 = 0;
  let peakRssMb = 0;
  const sumCpu = () => pidsOf().reduce((a, p) => a + (cpuSeconds(p) ?? 0), 0);
  const sample = () => {
    const rss = pidsOf().reduce((a, p) => a + (memory(p)?.rssMb ?? 0), 0);
    if (rss > peakRssMb) peakRssMb = rss;
  };
  return {
    start() {
      cpu0 = sumCpu();
      peakRssMb = 0;
      sample();
      timer = setInterval(sample, intervalMs);
    },
    stop() {
      if (timer) clearInterval(timer);
      timer = null;
      sample();
      return { cpuS: sumCpu() - cpu0, peakRssMb };
    },
  };
}

/**
 * Context switches of every thread of `pid` (from /proc/<pid>/task/<tid>/status): voluntary ones are the
 * process going to sleep and being woken, i.e. its wake-ups. Null when it is gone.
 */
export function contextSwitches(pid) {
  try {
    let voluntary = 0;
    let involuntary = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        const status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
        voluntary += Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0);
        involuntary += Number(/^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0);
      } catch { /* thread exited meanwhile */ }
    }
    return { voluntary, involuntary };
  } catch {
    return null;
  }
}

/** CPU seconds of all threads of `pid` in nanosecond resolution (/proc/<pid>/task/<tid>/schedstat), or null. */
export function preciseCpuSeconds(pid) {
  try {
    let ns = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try { ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]); } catch { /* exited */ }
    }
    return ns / 1e9;
  } catch {
    return null;
  }
}

/** CPU milliseconds per second and wake-ups per second of a group of pids over `seconds` of no traffic. */
export async function measureIdle(pidsOf, seconds) {
  const cpuOf = (p) => preciseCpuSeconds(p) ?? cpuSeconds(p);
  const pids = pidsOf();
  const cpu0 = pids.map((p) => cpuOf(p) ?? 0);
  const cs0 = pids.map((p) => contextSwitches(p));
  const t0 = process.hrtime.bigint();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  let cpu = 0;
  let wakeups = 0;
  let involuntary = 0;
  pids.forEach((p, i) => {
    cpu += (cpuOf(p) ?? 0) - (cpu0[i] ?? 0);
    const cs = contextSwitches(p);
    if (cs && cs0[i]) { wakeups += cs.voluntary - cs0[i].voluntary; involuntary += cs.involuntary - cs0[i].involuntary; }
  });
  return { seconds: wall, cpu_ms_per_s: (cpu * 1000) / wall, wakeups_per_s: wakeups / wall, involuntary_per_s: involuntary / wall };
}
