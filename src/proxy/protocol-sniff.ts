// Owns telling HTTP/1.1 from HTTP/2 with prior knowledge (h2c, gRPC) on one cleartext port: the first 24
// bytes either are the RFC 9113 §3.4 connection preface or they are not. Used by the outbound listener.

import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export interface ProtocolHandlers {
  /** Receives the socket resumed, with the bytes read so far put back. */
  h1(socket: Socket): void;
  /** Receives the socket paused, with the bytes read so far put back. */
  h2(socket: Socket): void;
  /** A connection that sends nothing is closed after this long. */
  silentTimeoutMs: number;
}

/** A TCP server that hands each connection to the HTTP/1.1 or the HTTP/2 server by its first bytes. */
export function createProtocolSniffer(handlers: ProtocolHandlers): NetServer {
  return createNetServer((socket: Socket) => {
    let buffered = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      const n = Math.min(buffered.length, H2_PREFACE.length);
      const isPrefix = buffered.subarray(0, n).equals(H2_PREFACE.subarray(0, n));
      if (isPrefix && buffered.length < H2_PREFACE.length) return;
      socket.off('data', onData);
      socket.pause();
      socket.unshift(buffered);
      // node:http2 drains what is already buffered on the socket into nghttp2 and then reads the handle
      // natively, so the socket must stay paused for it; node:http reads through the stream and needs resume.
      if (isPrefix) {
        handlers.h2(socket);
      } else {
        handlers.h1(socket);
        socket.resume();
      }
    };
    socket.on('data', onData);
    socket.on('error', () => socket.destroy());
    socket.setTimeout(handlers.silentTimeoutMs, () => { if (buffered.length === 0) socket.destroy(); });
  });
}
