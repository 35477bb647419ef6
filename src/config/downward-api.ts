// Owns reading a Kubernetes Downward API volume: `namespace` as plain text, `labels` and `annotations` as
// the kubelet writes them (one `key="value"` line per entry, sorted, value quoted like Go's strconv.Quote).

export interface DownwardApiFacts {
  namespace: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

export interface DownwardApiProblem {
  file: string;
  line: number;
  message: string;
}

const simpleEscapes: Record<string, number> = { a: 7, b: 8, f: 12, n: 10, r: 13, t: 9, v: 11, '\\': 92, '"': 34, "'": 39 };

/**
 * Unquotes a Go double-quoted string literal (what `%q` prints): \a \b \f \n \r \t \v \\ \" \xNN \NNN
 * \uNNNN \UNNNNNNNN. Bytes from \x and octal escapes are raw bytes, so invalid UTF-8 survives as U+FFFD.
 */
export function unquoteGo(text: string): string | undefined {
  if (text.length < 2 || !text.startsWith('"') || !text.endsWith('"')) return undefined;
  const body = text.slice(1, -1);
  const bytes: number[] = [];
  const pushUtf8 = (s: string): void => { for (const b of Buffer.from(s, 'utf8')) bytes.push(b); };
  for (let i = 0; i < body.length; i++) {
    const ch = body[i] as string;
    if (ch === '"') return undefined; // an unescaped quote ends the literal early
    if (ch !== '\\') {
      const cp = body.codePointAt(i) as number;
      const s = String.fromCodePoint(cp);
      pushUtf8(s);
      i += s.length - 1;
      continue;
    }
    const e = body[i + 1];
    if (e === undefined) return undefined;
    if (e in simpleEscapes) { bytes.push(simpleEscapes[e] as number); i += 1; continue; }
    if (e === 'x') {
      const hex = body.slice(i + 2, i + 4);
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) return undefined;
      bytes.push(parseInt(hex, 16));
      i += 3;
      continue;
    }
    if (e >= '0' && e <= '7') {
      const oct = body.slice(i + 1, i + 4);
      if (!/^[0-7]{3}$/.test(oct) || parseInt(oct, 8) > 255) return undefined;
      bytes.push(parseInt(oct, 8));
      i += 3;
      continue;
    }
    if (e === 'u' || e === 'U') {
      const n = e === 'u' ? 4 : 8;
      const hex = body.slice(i + 2, i + 2 + n);
      if (hex.length !== n || !/^[0-9a-fA-F]+$/.test(hex)) return undefined;
      const cp = parseInt(hex, 16);
      if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return undefined;
      pushUtf8(String.fromCodePoint(cp));
      i += 1 + n;
      continue;
    }
    return undefined;
  }
  return Buffer.from(bytes).toString('utf8');
}

/** Parses a labels/annotations file; every bad line is reported with its number. */
export function parseDownwardApiMap(text: string, file: string): { values: Record<string, string>; problems: DownwardApiProblem[] } {
  const values: Record<string, string> = {};
  const problems: DownwardApiProblem[] = [];
  const lines = text.split('\n');
  lines.forEach((raw, idx) => {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line === '') return;
    const eq = line.indexOf('=');
    if (eq <= 0) { problems.push({ file, line: idx + 1, message: 'expected key="value"' }); return; }
    const key = line.slice(0, eq);
    const value = unquoteGo(line.slice(eq + 1));
    if (value === undefined) { problems.push({ file, line: idx + 1, message: `the value of '${key}' is not a quoted string` }); return; }
    values[key] = value;
  });
  return { values, problems };
}

/** Reads namespace (required), labels and annotations (absent files mean none) through `readFile`. */
export async function readDownwardApi(dir: string, readFile: (path: string) => Promise<string>): Promise<{ facts: DownwardApiFacts } | { problems: DownwardApiProblem[] }> {
  const problems: DownwardApiProblem[] = [];
  const path = (name: string): string => `${dir.replace(/\/+$/, '')}/${name}`;
  const optional = async (name: string): Promise<string> => {
    try { return await readFile(path(name)); } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
      throw err;
    }
  };
  let namespace = '';
  try {
    namespace = (await readFile(path('namespace'))).trim();
    if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(namespace)) problems.push({ file: path('namespace'), line: 1, message: `'${namespace}' is not a namespace name` });
  } catch (err) {
    problems.push({ file: path('namespace'), line: 1, message: `cannot read the namespace: ${(err as Error).message} (mount metadata.namespace as 'namespace')` });
  }
  let labels: Record<string, string> = {};
  let annotations: Record<string, string> = {};
  try {
    const l = parseDownwardApiMap(await optional('labels'), path('labels'));
    const a = parseDownwardApiMap(await optional('annotations'), path('annotations'));
    problems.push(...l.problems, ...a.problems);
    labels = l.values;
    annotations = a.values;
  } catch (err) {
    problems.push({ file: dir, line: 1, message: `cannot read labels or annotations: ${(err as Error).message}` });
  }
  if (problems.length > 0) return { problems };
  return { facts: { namespace, labels, annotations } };
}
