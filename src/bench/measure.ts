// Owns how the benchmarks measure: process CPU time (steadier than wall time on a shared machine), the best of
// several rounds after a warm-up, and deterministic pseudo-random inputs so every run measures the same sets.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export const MEASURE_MS = Number(process.env.BENCH_MS ?? 1500);

/** Deterministic pseudo-random numbers so every run measures the same sets. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 0x100000000;
  };
}

/** Process CPU time in ms: steadier than wall time when the machine is shared. */
export function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

export const ROUNDS = 5;

// A full collection before each measurement keeps the compile's garbage (YAML trees) out of the figures.
setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

/** One round: ns per operation over MEASURE_MS / ROUNDS of CPU time. */
function round(fn: () => number): number {
  let ops = 0;
  const c0 = cpuMs();
  let c1 = c0;
  while (c1 - c0 < MEASURE_MS / ROUNDS) {
    // Read the clock (a system call) only every ~4,096 operations so it does not weigh on the figure.
    const target = ops + 4096;
    while (ops < target) ops += fn();
    c1 = cpuMs();
  }
  return ((c1 - c0) * 1e6) / ops;
}

function warm(fn: () => number): void {
  const warmEnd = cpuMs() + MEASURE_MS / 3;
  while (cpuMs() < warmEnd) fn();
}

/** Best of ROUNDS rounds (the least disturbed by other processes), after a warm-up. */
export function measure(fn: () => number): { nsPerOp: number; opsPerSec: number } {
  collectGarbage();
  warm(fn);
  let best = Infinity;
  for (let r = 0; r < ROUNDS; r++) best = Math.min(best, round(fn));
  return { nsPerOp: best, opsPerSec: 1e9 / best };
}

/**
 * The same for several workloads whose figures are compared (rule-set sizes): their rounds alternate, so a
 * burst of load on the shared machine weighs on all of them alike, not on whichever ran at the time.
 */
export function measureInterleaved(fns: readonly (() => number)[]): { nsPerOp: number; opsPerSec: number }[] {
  collectGarbage();
  const best = fns.map(() => Infinity);
  for (let r = 0; r < ROUNDS; r++) {
    fns.forEach((fn, i) => {
      // Each round starts warm: the other workloads ran in between.
      if (r === 0) warm(fn);
      else fn();
      best[i] = Math.min(best[i] as number, round(fn));
    });
  }
  return best.map((ns) => ({ nsPerOp: ns, opsPerSec: 1e9 / ns }));
}
