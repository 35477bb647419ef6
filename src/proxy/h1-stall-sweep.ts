// Owns limits.idleTimeout for HTTP/1.1 connections while a request is in flight: a connection on which no byte
// moved either way for that long is closed (a caller that stopped reading its response). Envoy's idle_timeout.

import type { Socket } from 'node:net';

/**
 * Between requests, Node's keep-alive timeout closes an idle connection. During one, this sweep does, from one timer
 * per listener that looks at the connections with a request in flight: a socket timeout (`server.timeout`) would
 * have Node arm a new timer at every request and refresh it at every read and write, about 1.5% of a request's CPU.
 */
export interface StallSweep {
  /** A request started: makes sure the sweep is running (a no-op while it is). */
  wake(): void;
  stop(): void;
}

interface Progress { moved: number; since: number }

/**
 * `connections()` lists the listener's HTTP/1.1 sockets, `busy(s)` tells whether one has a request in flight, and
 * `stalled(s)` is called for one on which nothing moved for `idleTimeoutMs`. The sweep runs every 1/20 of the limit
 * (at least every 10 ms, at most every minute), so a stall is caught at most two periods (10%) after the limit; it
 * stops by itself once no connection is busy, so an idle listener has no timer.
 */
export function stallSweep(idleTimeoutMs: number, connections: () => Iterable<Socket>, busy: (socket: Socket) => boolean, stalled: (socket: Socket) => void): StallSweep {
  const periodMs = Math.max(10, Math.min(60_000, Math.floor(idleTimeoutMs / 20)));
  /** Bytes moved as last seen and since when, for the connections busy at the last sweep (made anew each sweep). */
  let progress = new Map<Socket, Progress>();
  let timer: NodeJS.Timeout | null = null;

  const sweep = (): void => {
    timer = null;
    const now = performance.now();
    const last = progress;
    progress = new Map();
    let anyBusy = false;
    for (const socket of connections()) {
      if (!busy(socket) || socket.destroyed) continue;
      anyBusy = true;
      // Plaintext bytes both ways; a write the caller has not taken yet still counts once, when it is made.
      const moved = socket.bytesRead + (socket.bytesWritten ?? 0);
      const seen = last.get(socket);
      if (seen === undefined || seen.moved !== moved) progress.set(socket, { moved, since: now });
      else if (now - seen.since >= idleTimeoutMs) stalled(socket);
      else progress.set(socket, seen);
    }
    if (anyBusy) arm();
  };
  const arm = (): void => {
    timer = setTimeout(sweep, periodMs);
    // Never what keeps the process alive.
    timer.unref();
  };

  return {
    wake() { if (timer === null) arm(); },
    stop() {
      if (timer !== null) clearTimeout(timer);
      timer = null;
      progress = new Map();
    },
  };
}
