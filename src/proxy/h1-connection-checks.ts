// Owns when Node's HTTP/1.1 connection checker runs for a server that never listens itself (its sockets
// arrive after TLS): only while it has connections, so an idle listener has no timer waking it every second.

import type http from 'node:http';
import type { Socket } from 'node:net';

/**
 * Node's http.Server enforces headersTimeout and requestTimeout from one interval timer, started when the
 * server emits 'listening' and stopped by close(). `adopt(socket)` must be called for every socket
 * before it is handed to the server: the first one starts the checker, the last one to close stops it.
 */
export function connectionChecks(server: http.Server): { adopt(socket: Socket): void } {
  let open = 0;
  let intervalKey: symbol | undefined;
  const stop = (): void => {
    // The timer sits under a private symbol; if a Node version names it differently, it keeps running
    // (correct, only not idle).
    intervalKey ??= Object.getOwnPropertySymbols(server).find((s) => s.description === 'http.server.connectionsCheckingInterval');
    if (intervalKey === undefined) return;
    const timer = (server as unknown as Record<symbol, NodeJS.Timeout | undefined>)[intervalKey];
    if (timer !== undefined) clearInterval(timer);
  };
  const onClose = (): void => {
    open--;
    if (open === 0) stop();
  };
  return {
    adopt(socket) {
      open++;
      // 'listening' (re)starts the checker and creates the connection list the parser registers with.
      if (open === 1) server.emit('listening');
      socket.once('close', onClose);
    },
  };
}

/**
 * Node enforces headersTimeout and requestTimeout only when its connection check runs, so a timeout fires up
 * to one interval late (a 1 s interval closed a 10 s slow head at 10.3-11.0 s). Checking every 1/50 of the
 * shorter limit keeps each within 2% of its target plus event-loop lag (10 s default: every 200 ms; never
 * more often than every 10 ms). The checker only runs while the listener has connections (above).
 */
export function connectionsCheckingIntervalMs(limits: { headersTimeoutMs: number; requestTimeoutMs: number }): number {
  return Math.max(10, Math.min(1000, Math.floor(Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs) / 50)));
}
