// Owns Portcullis' replacement of AsyncResource.prototype.bind on Node versions whose own keeps every HTTP/2 client
// request alive through scavenges (node:http2 ClientHttp2Session.request binds each request; nodejs/node#58218, fixed in v24).

import { AsyncResource } from 'node:async_hooks';

/**
 * Why: Node 20's bind() gives every bound function an `asyncResource` accessor pair made by util.deprecate(), which
 * sets each accessor's prototype to a closure made for that call. A prototype change gives the accessor a hidden
 * class of its own; hidden classes live in old space, so the young closure it points to (and through the closure's
 * scope the bound function's target: for node:http2, the request's whole stream) survives every scavenge and is
 * promoted. A bare node:http2 client promotes 2.6 KB per request that way and 0.07 KB with this replacement.
 *
 * The replacement behaves as Node's: the same call (in the resource's async scope, with `thisArg` or the call's
 * own `this`), the same `length`, and an `asyncResource` property that still warns DEP0172, through one accessor
 * pair shared by every bound function.
 */
const kResource = Symbol('portcullis.asyncResource');
type BoundFunction = ((...args: unknown[]) => unknown) & { [kResource]?: unknown };

let warned = false;
function warnDeprecated(): void {
  if (warned) return;
  warned = true;
  process.emitWarning('The asyncResource property on bound functions is deprecated', 'DeprecationWarning', 'DEP0172');
}
function getResource(this: BoundFunction): unknown {
  warnDeprecated();
  return this[kResource];
}
function setResource(this: BoundFunction, value: unknown): void {
  warnDeprecated();
  this[kResource] = value;
}

type Bind = (this: AsyncResource, fn: (...args: unknown[]) => unknown, thisArg?: unknown) => BoundFunction;
const nodeBind = AsyncResource.prototype.bind as unknown as Bind;

function bind(this: AsyncResource, fn: (...args: unknown[]) => unknown, thisArg?: unknown): BoundFunction {
  // Node's own validation and errors for anything but a function.
  if (typeof fn !== 'function') return nodeBind.call(this, fn, thisArg);
  return bindTo(this, fn, thisArg);
}

function bindTo(resource: AsyncResource, fn: (...args: unknown[]) => unknown, thisArg: unknown): BoundFunction {
  const bound: BoundFunction = thisArg === undefined
    ? function (this: unknown, ...args: unknown[]): unknown { return resource.runInAsyncScope(fn, this, ...args); }
    : (resource.runInAsyncScope as (fn: unknown, thisArg: unknown, ...args: unknown[]) => unknown).bind(resource, fn, thisArg) as BoundFunction;
  Object.defineProperty(bound, 'length', { configurable: true, enumerable: false, writable: false, value: fn.length });
  Object.defineProperty(bound, kResource, { configurable: true, enumerable: false, writable: true, value: resource });
  Object.defineProperty(bound, 'asyncResource', { configurable: true, enumerable: true, get: getResource, set: setResource });
  return bound;
}

/** Whether `bindFn` (Node's, by default) gives each bound function's accessor a prototype of its own (the defect above). */
export function bindKeepsTargets(bindFn: Bind = nodeBind): boolean {
  const probe = bindFn.call(new AsyncResource('PortcullisBindProbe'), () => undefined);
  const accessor = Object.getOwnPropertyDescriptor(probe, 'asyncResource')?.get;
  return accessor !== undefined && Object.getPrototypeOf(accessor) !== Function.prototype;
}

let installed: boolean | undefined;

/**
 * Installs the replacement once per process, where Node's bind() has the defect; elsewhere (Node's fix, or a Node
 * without the property) Node's own is kept. Returns whether the replacement is in use.
 */
export function useScavengeFriendlyAsyncBind(): boolean {
  if (installed !== undefined) return installed;
  installed = bindKeepsTargets();
  if (installed) Object.defineProperty(AsyncResource.prototype, 'bind', { configurable: true, enumerable: false, writable: true, value: bind });
  return installed;
}
