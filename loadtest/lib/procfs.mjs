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
