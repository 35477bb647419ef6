// Owns the one "did you mean" helper: the closest known spelling within edit distance 2, used by every
// dialect's schema and by the config loader, so a misspelt field gets the same kind of hint everywhere.

const MAX_DISTANCE = 2;

/** Levenshtein distance, capped: anything above MAX_DISTANCE is reported as MAX_DISTANCE + 1. */
export function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > MAX_DISTANCE) return MAX_DISTANCE + 1;
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min((prev[j] as number) + 1, (cur[j - 1] as number) + 1, (prev[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return Math.min(prev[b.length] as number, MAX_DISTANCE + 1);
}

const lower = (s: string): string => s.toLowerCase();

/**
 * The item one of whose spellings is closest to `name` (distance <= 2 after `normalize`, first on ties),
 * or undefined.
 */
export function closest<T>(name: string, items: readonly T[], spellings: (item: T) => readonly string[], normalize: (s: string) => string = lower): T | undefined {
  const wanted = normalize(name);
  let best: T | undefined;
  let bestDistance = MAX_DISTANCE + 1;
  for (const item of items) {
    for (const spelling of spellings(item)) {
      const d = editDistance(wanted, normalize(spelling));
      if (d < bestDistance) {
        bestDistance = d;
        best = item;
      }
    }
  }
  return best;
}
