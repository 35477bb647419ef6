// Owns query-string parsing for `request.query` (Linkerd queryParams): application/x-www-form-urlencoded,
// names compared exactly, every occurrence of a name kept so any of them may satisfy a matcher.

const parsed = new WeakMap<object, Map<string, string[]>>();

function decode(s: string): string {
  const plus = s.replace(/\+/g, ' ');
  try {
    return decodeURIComponent(plus);
  } catch {
    return plus;
  }
}

export function parseQuery(query: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  if (query.length === 0) return out;
  for (const pair of query.split('&')) {
    if (pair.length === 0) continue;
    const eq = pair.indexOf('=');
    const name = decode(eq === -1 ? pair : pair.slice(0, eq));
    const value = eq === -1 ? '' : decode(pair.slice(eq + 1));
    const list = out.get(name);
    if (list) list.push(value);
    else out.set(name, [value]);
  }
  return out;
}

/** Parsed once per context object (contexts are frozen, so the cache cannot go stale). */
export function queryParams(ctx: { query: string }): Map<string, string[]> {
  let m = parsed.get(ctx);
  if (!m) {
    m = parseQuery(ctx.query);
    parsed.set(ctx, m);
  }
  return m;
}
