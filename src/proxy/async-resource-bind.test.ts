import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AsyncResource, executionAsyncId } from 'node:async_hooks';
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { bindKeepsTargets, useScavengeFriendlyAsyncBind } from './async-resource-bind.js';

describe('AsyncResource.prototype.bind replacement', () => {
  const nodeBind = AsyncResource.prototype.bind;
  const inUse = useScavengeFriendlyAsyncBind();

  it('is used exactly where Node gives each bound function an accessor prototype of its own', () => {
    // On Node 20 the defect is there; a Node with the fix keeps its own bind.
    const majorVersion = Number(process.versions.node.split('.')[0]);
    if (majorVersion === 20) assert.equal(inUse, true);
    assert.equal(inUse, AsyncResource.prototype.bind !== nodeBind);
    assert.equal(bindKeepsTargets(AsyncResource.prototype.bind as Parameters<typeof bindKeepsTargets>[0]), false, 'the bind in use gives no bound function a prototype of its own');
  });

  it('shares one accessor pair, whose prototype is Function.prototype, across bound functions', () => {
    const a = new AsyncResource('A').bind(() => 1);
    const b = new AsyncResource('B').bind(() => 2);
    const da = Object.getOwnPropertyDescriptor(a, 'asyncResource');
    const db = Object.getOwnPropertyDescriptor(b, 'asyncResource');
    assert.ok(da?.get && db?.get);
    assert.equal(Object.getPrototypeOf(da.get), Function.prototype);
    if (inUse) assert.equal(da.get, db.get);
    assert.equal(da.enumerable, true);
  });

  it('calls as Node does: in the resource scope, with thisArg or the call\'s own this, with the target\'s length', () => {
    const resource = new AsyncResource('Probe');
    let seen: { id: number; self: unknown; args: unknown[] } | null = null;
    function target(this: unknown, x: unknown, y: unknown): string {
      seen = { id: executionAsyncId(), self: this, args: [x, y] };
      return 'result';
    }
    const bound = resource.bind(target);
    assert.equal(bound.length, 2);
    const holder = { bound };
    assert.equal(holder.bound(1, 2), 'result');
    assert.deepEqual(seen, { id: resource.asyncId(), self: holder, args: [1, 2] });
    const fixed = { name: 'fixed' };
    // @types/node declares bind(fn) only; Node takes thisArg too.
    const boundThis = (resource.bind as (fn: typeof target, thisArg: unknown) => typeof target).call(resource, target, fixed);
    boundThis(3, 4);
    assert.deepEqual(seen, { id: resource.asyncId(), self: fixed, args: [3, 4] });
    const staticBound = (AsyncResource.bind as (fn: (x: unknown, y: unknown) => string) => (x: unknown, y: unknown) => string)(target);
    staticBound(5, 6);
    assert.deepEqual((seen as unknown as { args: unknown[] }).args, [5, 6]);
  });

  it('keeps the deprecated asyncResource property: reads the resource, can be set, warns DEP0172', async () => {
    const resource = new AsyncResource('Probe');
    const bound = resource.bind(() => undefined) as unknown as { asyncResource: unknown };
    const other = new AsyncResource('Other');
    const warnings: Error[] = [];
    const onWarning = (w: Error): void => { warnings.push(w); };
    process.on('warning', onWarning);
    try {
      assert.equal(bound.asyncResource, resource);
      bound.asyncResource = other;
      assert.equal(bound.asyncResource, other);
      // Emitted on a later tick, once per process (nothing else in this file reads the property).
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('warning', onWarning);
    }
    assert.deepEqual(warnings.map((w) => (w as Error & { code?: string }).code), ['DEP0172']);
  });

  it('refuses a non-function as Node does', () => {
    assert.throws(() => new AsyncResource('Probe').bind(42 as unknown as () => void), { code: 'ERR_INVALID_ARG_TYPE' });
  });

  it('carries node:http2 client requests end to end', async () => {
    const server = http2.createServer((req, res) => { res.setHeader('x-path', req.url); res.end('ok'); });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const session = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    try {
      for (let i = 0; i < 3; i++) {
        const got = await new Promise<{ path: unknown; body: string }>((resolve, reject) => {
          const req = session.request({ ':path': `/r${i}` });
          let body = '';
          let path: unknown;
          req.on('response', (h) => { path = h['x-path']; });
          req.setEncoding('utf8');
          req.on('data', (d: string) => { body += d; });
          req.on('end', () => resolve({ path, body }));
          req.on('error', reject);
        });
        assert.deepEqual(got, { path: `/r${i}`, body: 'ok' });
      }
    } finally {
      session.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
