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

/** Best of ROUNDS rounds (the least disturbed by other processes), after a warm-up. */
export function measure(fn: () => number): { nsPerOp: number; opsPerSec: number } {
  collectGarbage();
  const warmEnd = cpuMs() + MEASURE_MS / 3;
  while (cpuMs() < warmEnd) fn();
  let best = Infinity;
  for (let round = 0; round < ROUNDS; round++) {
    let ops = 0;
    const c0 = cpuMs();
    let c1 = c0;
    while (c1 - c0 < MEASURE_MS / ROUNDS) {
      // Read the clock (a system call) only every ~4,096 operations so it does not weigh on the figure.
      const target = ops + 4096;
      while (ops < target) ops += fn();
      c1 = cpuMs();
    }
    best = Math.min(best, ((c1 - c0) * 1e6) / ops);
  }
  return { nsPerOp: best, opsPerSec: 1e9 / best };
}
