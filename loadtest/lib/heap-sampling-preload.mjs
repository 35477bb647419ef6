// Owns the sampling side of loadtest/promoted.mjs, loaded into a proxy with `node --import`: V8's sampling heap
// profiler (objects that outlived a minor GC, or all), written to $PORTCULLIS_HEAP_SAMPLING_OUT on SIGUSR2.

import inspector from 'node:inspector';
import { writeFileSync } from 'node:fs';

const out = process.env.PORTCULLIS_HEAP_SAMPLING_OUT;
if (out) {
  const session = new inspector.Session();
  session.connect();
  const post = (method, params) => new Promise((resolve, reject) => session.post(method, params, (err, r) => (err ? reject(err) : resolve(r))));
  const started = post('HeapProfiler.enable').then(() => post('HeapProfiler.startSampling', {
    samplingInterval: Number(process.env.PORTCULLIS_HEAP_SAMPLING_INTERVAL ?? 4096),
    // Unless PORTCULLIS_HEAP_SAMPLING_ALL is set, what a scavenge frees is left out: the profile then holds what
    // was promoted (then freed by a mark-compact) or is live; with it, every allocation.
    includeObjectsCollectedByMinorGC: process.env.PORTCULLIS_HEAP_SAMPLING_ALL === '1',
    includeObjectsCollectedByMajorGC: true,
  }));
  process.on('SIGUSR2', () => {
    started
      .then(() => post('HeapProfiler.stopSampling'))
      .then((r) => writeFileSync(out, JSON.stringify(r.profile)))
      .catch((err) => process.stderr.write(`heap sampling: ${err.message}\n`));
  });
}
