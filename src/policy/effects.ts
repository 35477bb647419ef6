// Owns the effects of an admitted, routed request: Gateway API route filters (header modifiers, redirect)
// and the local rate limit to apply. Redirects follow Gateway API RequestRedirect (linkerd.md §7).
import type { RequestContext } from './context-types.js';
import type { DecisionEffects } from './decision.js';
import type { HeaderEdit, RouteFilter } from './ir.js';
import type { CompiledScope } from './program.js';
import { segmentPrefixMatches, type RouteHit } from './match/routes.js';

export function emptyEffects(): DecisionEffects {
  return { setHeaders: [], addHeaders: [], removeHeaders: [], redirect: null, rateLimit: null };
}

export function hasEffects(e: DecisionEffects): boolean {
  return e.redirect !== null || e.rateLimit !== null || e.setHeaders.length + e.addHeaders.length + e.removeHeaders.length > 0;
}

/**
 * Header edits applied one after another (Cilium's order), as the final state of each header they touch in the
 * data plane's remove / set / add lists: a header an edit replaced or removed is dropped, then the values left
 * are added; one only appended to keeps its received values.
 */
export function headerEditEffects(edits: readonly HeaderEdit[]): DecisionEffects {
  const touched = new Map<string, { cleared: boolean; values: string[] }>();
  for (const e of edits) {
    let h = touched.get(e.name);
    if (h === undefined) touched.set(e.name, (h = { cleared: false, values: [] }));
    if (e.op === 'add') h.values.push(e.value);
    else {
      h.cleared = true;
      h.values = e.op === 'set' ? [e.value] : [];
    }
  }
  const effects = emptyEffects();
  for (const [name, h] of touched) {
    if (h.cleared) effects.removeHeaders.push(name);
    for (const value of h.values) effects.addHeaders.push({ name, value });
  }
  return effects;
}

/** Both tiers' effects (defense in depth: each admitting tier's edits apply); the first redirect and rate limit win. */
export function mergeEffects(a: DecisionEffects, b: DecisionEffects): DecisionEffects {
  return {
    setHeaders: [...a.setHeaders, ...b.setHeaders], addHeaders: [...a.addHeaders, ...b.addHeaders], removeHeaders: [...a.removeHeaders, ...b.removeHeaders],
    redirect: a.redirect ?? b.redirect, rateLimit: a.rateLimit ?? b.rateLimit,
  };
}

export function routeEffects(hit: RouteHit, ctx: RequestContext): DecisionEffects {
  const effects = emptyEffects();
  for (const f of hit.rule.filters) {
    if (f.type === 'RequestHeaderModifier') {
      effects.setHeaders.push(...f.set);
      effects.addHeaders.push(...f.add);
      effects.removeHeaders.push(...f.remove);
    } else if (f.type === 'RequestRedirect' && !effects.redirect) {
      effects.redirect = { status: f.statusCode, location: redirectLocation(f, hit, ctx) };
    }
  }
  return effects;
}

/** The scope's local rate limit for this peer: total, and the first matching override or the per-identity limit. */
export function rateLimitEffect(rl: NonNullable<CompiledScope['rateLimit']>, ctx: RequestContext): NonNullable<DecisionEffects['rateLimit']> {
  const { limit } = rl;
  const override = rl.overrides.find((o) => o.test(ctx));
  const out: NonNullable<DecisionEffects['rateLimit']> = { key: `${limit.ref.namespace}/${limit.ref.name}`, ref: limit.ref };
  if (limit.totalRps !== undefined) out.totalRps = limit.totalRps;
  if (override) out.overrideRps = override.rps;
  else if (limit.identityRps !== undefined) out.identityRps = limit.identityRps;
  return out;
}

/** Gateway API RequestRedirect: unspecified parts come from the request; a new scheme drops the port. */
function redirectLocation(f: Extract<RouteFilter, { type: 'RequestRedirect' }>, hit: RouteHit, ctx: RequestContext): string {
  const scheme = f.scheme ?? 'http';
  const host = f.hostname ?? ctx.host;
  const authorityPort = /:(\d+)$/.exec(ctx.authority)?.[1];
  const port = f.port !== undefined ? String(f.port) : f.scheme !== undefined ? undefined : authorityPort;
  const defaultPort = scheme === 'https' ? '443' : '80';
  let path = ctx.path;
  if (f.path?.type === 'ReplaceFullPath') path = f.path.value;
  else if (f.path?.type === 'ReplacePrefixMatch') {
    const matched = hit.match?.path;
    const prefix = matched && matched.kind === 'segment-prefix' && segmentPrefixMatches(matched.value, ctx.path) ? matched.value.replace(/\/+$/, '') : '';
    const rest = ctx.path.slice(prefix.length);
    const replacement = f.path.value.replace(/\/+$/, '');
    path = replacement + rest;
    if (path === '') path = '/';
    else if (!path.startsWith('/')) path = `/${path}`;
  }
  const portPart = port !== undefined && port !== defaultPort ? `:${port}` : '';
  const query = ctx.query !== '' ? `?${ctx.query}` : '';
  return `${scheme}://${host}${portPart}${path}${query}`;
}
