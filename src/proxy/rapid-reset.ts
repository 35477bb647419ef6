// Owns the HTTP/2 rapid-reset guard (CVE-2023-44487): client stream resets are counted per session per
// second; above the limit the session gets GOAWAY ENHANCE_YOUR_CALM and its transport is cut.

import * as http2 from 'node:http2';
import type * as net from 'node:net';
import type { Duplex } from 'node:stream';

/** Returns the per-stream hook of one session; call it for every new stream. */
export function rapidResetGuard(session: http2.ServerHttp2Session, maxResetsPerSecond: number, transport: Duplex | null): (stream: http2.ServerHttp2Stream) => void {
  let windowStart = 0;
  let resets = 0;
  return (stream) => {
    // 'close' with a non-zero code covers streams reset before their handler ran ('aborted' does not).
    stream.on('close', () => {
      if (stream.rstCode === http2.constants.NGHTTP2_NO_ERROR || stream.rstCode === undefined) return;
      const now = Date.now();
      if (now - windowStart >= 1000) { windowStart = now; resets = 0; }
      if (++resets > maxResetsPerSecond && !session.destroyed) {
        session.goaway(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
        // session.destroy() alone may leave the TLS socket half-open; cut the transport after the GOAWAY flushes.
        setImmediate(() => {
          session.destroy();
          transport?.destroy();
          (transport as { _parent?: net.Socket } | null)?._parent?.destroy();
        });
      }
    });
  };
}
