// Owns the help text of the workload and request flags shared by `check` and `explain`; parsing and defaults come
// from the config schema (src/config), so `run`, `check` and `explain` give every flag one meaning.

import { configSchema } from '../config/schema.js';

export { defaultCompileOptions, parseWorkloadFlags } from '../config/load.js';

export const workloadFlagsHelp = [
  'workload and request flags (the same meaning as in `portcullis run`):',
  ...configSchema.filter((k) => k.workload).map((k) => {
    const flag = `  --${k.flag} ${k.type}`;
    const def = k.default !== undefined && k.default !== '' ? ` (default: ${k.default})` : '';
    return `${flag.padEnd(40)} ${k.help}${def}`;
  }),
  '',
].join('\n');
