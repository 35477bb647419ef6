// Owns what the load test measures: the points (workload x load model) and, per profile, which setups
// run each point, for how long, and how many interleaved repetitions.

/** Workload + load model; `loader` is handed to loader.mjs, `endpoint` picks the setup's listener. */
export const POINTS = {
  'h1-get-sat': {
    title: 'HTTP/1.1 keep-alive GET, saturation', model: 'saturation', endpoint: 'h1', path: '/api/items',
    loader: { kind: 'h1-sat', connections: 32 },
  },
  'h1-post64k-sat': {
    title: 'HTTP/1.1 POST 64 KiB body, saturation', model: 'saturation', endpoint: 'h1', path: '/api/upload',
    loader: { kind: 'h1-sat', connections: 32, method: 'POST', bodyBytes: 65_536 },
  },
  'h2-get-sat': {
    title: 'HTTP/2 over TLS GET, saturation', model: 'saturation', endpoint: 'h2', path: '/api/h2',
    loader: { kind: 'h2-sat', sessions: 4, streamsPerSession: 8 },
  },
  'grpc-unary-sat': {
    title: 'gRPC unary (64 B), saturation', model: 'saturation', endpoint: 'grpc',
    loader: { kind: 'grpc-unary', concurrency: 32, payloadBytes: 64 },
  },
  'grpc-stream-sat': {
    title: 'gRPC server streaming (100 x 64 B per call), saturation', model: 'saturation', endpoint: 'grpc',
    loader: { kind: 'grpc-stream', concurrency: 8, streamMessages: 100, payloadBytes: 64 },
  },
  'h1-get-rate1000': {
    title: 'HTTP/1.1 GET at 1,000 requests/s (open loop)', model: 'rate', rate: 1000, endpoint: 'h1', path: '/api/items',
    loader: { kind: 'h1-rate', connections: 64, rate: 1000 },
  },
  'h2-get-rate1000': {
    title: 'HTTP/2 over TLS GET at 1,000 requests/s (open loop)', model: 'rate', rate: 1000, endpoint: 'h2', path: '/api/h2',
    loader: { kind: 'h2-rate', sessions: 4, rate: 1000 },
  },
  'grpc-unary-rate1000': {
    title: 'gRPC unary (64 B) at 1,000 calls/s (open loop)', model: 'rate', rate: 1000, endpoint: 'grpc',
    loader: { kind: 'grpc-unary-rate', rate: 1000, payloadBytes: 64 },
  },
  'h1-get-rate5000': {
    title: 'HTTP/1.1 GET at 5,000 requests/s (open loop)', model: 'rate', rate: 5000, endpoint: 'h1', path: '/api/items',
    loader: { kind: 'h1-rate', connections: 64, rate: 5000 },
  },
};

const ALL = ['direct', 'nginx', 'bare', 'pc-10', 'pc-1000', 'pc-jwt', 'pc-audit', 'pc-mesh'];
const PROTOCOLS = ['direct', 'nginx', 'bare', 'pc-10', 'pc-mesh'];
/** The setups the ratios to the bare Node proxy are taken from. */
const VS_BARE = ['direct', 'bare', 'pc-10'];

export const PROFILES = {
  // About 2 minutes: the headline ratios only (and the ratios to the bare Node proxy).
  quick: {
    repetitions: 3,
    prewarmS: 1.5,
    idleSettleS: 10,
    idleS: 30,
    points: [
      { point: 'h1-get-sat', setups: ['direct', 'nginx', 'bare', 'pc-10', 'pc-1000'], durationS: 2, warmupS: 0.3 },
      { point: 'h1-get-rate1000', setups: ['direct', 'nginx', 'bare', 'pc-10', 'pc-1000'], durationS: 3, warmupS: 0.5 },
    ],
  },
  // About 2 minutes: what replayable decision events cost per request against minimal ones (docs/replay.md).
  capture: {
    repetitions: 5,
    prewarmS: 1.5,
    idleS: 0,
    points: [
      { point: 'h1-get-sat', setups: ['pc-capture', 'pc-capture-minimal'], durationS: 3, warmupS: 0.3 },
      { point: 'h1-get-rate1000', setups: ['pc-capture', 'pc-capture-minimal'], durationS: 4, warmupS: 0.5 },
    ],
  },
  // Within 15 minutes: every setup, workload and load model.
  full: {
    repetitions: 3,
    prewarmS: 3,
    idleSettleS: 10,
    idleS: 30,
    points: [
      { point: 'h1-get-sat', setups: [...ALL, 'pc-10-c2'], durationS: 5, warmupS: 0.5 },
      { point: 'h1-post64k-sat', setups: PROTOCOLS, durationS: 5, warmupS: 0.5 },
      { point: 'h2-get-sat', setups: PROTOCOLS, durationS: 5, warmupS: 0.5 },
      { point: 'grpc-unary-sat', setups: PROTOCOLS, durationS: 5, warmupS: 0.5 },
      { point: 'grpc-stream-sat', setups: ['direct', 'nginx', 'pc-10'], durationS: 5, warmupS: 0.5 },
      { point: 'h1-get-rate1000', setups: [...ALL, 'pc-10-c2'], durationS: 5, warmupS: 0.5 },
      { point: 'h2-get-rate1000', setups: VS_BARE, durationS: 5, warmupS: 0.5 },
      { point: 'grpc-unary-rate1000', setups: VS_BARE, durationS: 5, warmupS: 0.5 },
      { point: 'h1-get-rate5000', setups: ALL, durationS: 5, warmupS: 0.5 },
    ],
  },
};
