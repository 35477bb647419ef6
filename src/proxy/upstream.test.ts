import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { grpcDeadlineMs } from './upstream.js';

// Cases from gRPC's PROTOCOL-HTTP2.md: Timeout → "grpc-timeout" TimeoutValue TimeoutUnit, TimeoutValue → {positive
// integer as ASCII string of at most 8 digits}, TimeoutUnit → Hour "H" / Minute "M" / Second "S" / Millisecond "m" /
// Microsecond "u" / Nanosecond "n".
describe('grpcDeadlineMs', () => {
  it('reads every unit in whole milliseconds', () => {
    assert.equal(grpcDeadlineMs('2H'), 7_200_000);
    assert.equal(grpcDeadlineMs('3M'), 180_000);
    assert.equal(grpcDeadlineMs('5S'), 5_000);
    assert.equal(grpcDeadlineMs('500m'), 500);
    assert.equal(grpcDeadlineMs('1500u'), 2, 'a fraction of a millisecond rounds up');
    assert.equal(grpcDeadlineMs('99999999n'), 100);
  });

  it('never reads a deadline shorter than a millisecond as none', () => {
    assert.equal(grpcDeadlineMs('1n'), 1);
    assert.equal(grpcDeadlineMs('0m'), 1);
  });

  it('takes no deadline from an absent, repeated or malformed header', () => {
    for (const value of [undefined, ['1S', '2S'], '', 'S', '123456789m', '10x', '-5S', '1.5S', '10 S']) {
      assert.equal(grpcDeadlineMs(value), undefined, JSON.stringify(value));
    }
  });

  it('ignores surrounding whitespace, as a header value may carry it', () => {
    assert.equal(grpcDeadlineMs(' 10m '), 10);
  });
});
