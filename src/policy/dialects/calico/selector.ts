// Owns the Calico selector language: tokenizer, parser (with the column of every error), evaluation over a
// label lookup, and the canonical text. Follows libcalico-go lib/selector (tokenizer.go, parser.go, ast.go).

/** A parsed selector. Label tests on an absent label are false, except `!=` and `not in` (true). */
export type SelectorNode =
  | { op: 'all' }
  /** `global()`: in a namespaceSelector, the non-namespaced resources; true on any label set (ast.go). */
  | { op: 'global' }
  | { op: 'has'; key: string }
  | { op: '=='; key: string; value: string }
  | { op: '!='; key: string; value: string }
  | { op: 'contains'; key: string; value: string }
  | { op: 'starts with'; key: string; value: string }
  | { op: 'ends with'; key: string; value: string }
  | { op: 'in'; key: string; values: string[] }
  | { op: 'not in'; key: string; values: string[] }
  | { op: 'not'; of: SelectorNode }
  | { op: 'and'; of: SelectorNode[] }
  | { op: 'or'; of: SelectorNode[] };

export type LabelNode = Extract<SelectorNode, { key: string }>;

export type ParseResult = { ok: true; selector: SelectorNode } | { ok: false; message: string; column: number };

type TokenKind =
  | 'label' | 'string' | '{' | '}' | ',' | '==' | '!=' | 'in' | '!' | 'not in' | 'contains' | 'starts with' | 'ends with'
  | 'all' | 'global' | 'has' | '(' | ')' | '&&' | '||' | 'eof';

interface Token {
  kind: TokenKind;
  value: string;
  /** 0-based offset of the token's first character in the selector text. */
  at: number;
}

class SelectorError extends Error {
  constructor(message: string, readonly at: number) {
    super(message);
  }
}

// Calico skips spaces and tabs only: a newline inside a selector is an unexpected character.
const isSpace = (c: string | undefined): boolean => c === ' ' || c === '\t';
const isIdentChar = (c: string | undefined): boolean => c !== undefined && /[A-Za-z0-9_./-]/.test(c);

function identifierAt(text: string, i: number): string {
  let j = i;
  while (isIdentChar(text[j])) j++;
  return text.slice(i, j);
}

function describeChar(c: string): string {
  if (c === '\n') return 'a newline';
  if (c === '\r') return 'a carriage return';
  return JSON.stringify(c);
}

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const skip = () => { while (isSpace(text[i])) i++; };
  const push = (kind: TokenKind, at: number, value = '') => tokens.push({ kind, value, at });
  for (;;) {
    skip();
    if (i >= text.length) { push('eof', i); return tokens; }
    const at = i;
    const c = text[i] as string;
    const last = tokens.length > 0 ? (tokens[tokens.length - 1] as Token).kind : undefined;
    switch (c) {
      case '(': case ')': case '{': case '}': case ',':
        push(c, at); i++; continue;
      case '"': case '\'': {
        const end = text.indexOf(c, i + 1);
        if (end < 0) throw new SelectorError(`unterminated string: no closing ${c}`, at);
        push('string', at, text.slice(i + 1, end));
        i = end + 1;
        continue;
      }
      case '=':
        if (text[i + 1] !== '=') throw new SelectorError('expected == (a single = is not an operator)', at);
        push('==', at); i += 2; continue;
      case '!':
        if (text[i + 1] === '=') { push('!=', at); i += 2; } else { push('!', at); i++; }
        continue;
      case '&':
        if (text[i + 1] !== '&') throw new SelectorError('expected && (a single & is not an operator)', at);
        push('&&', at); i += 2; continue;
      case '|':
        if (text[i + 1] !== '|') throw new SelectorError('expected || (a single | is not an operator)', at);
        push('||', at); i += 2; continue;
    }
    if (last === 'label') {
      // After a label only an operator word may follow (tokenizer.go reads them by prefix).
      const label = (tokens[tokens.length - 1] as Token).value;
      const expectOperator = (where = at) => new SelectorError(`expected an operator after label "${label}" (==, !=, in, not in, contains, starts with, ends with)`, where);
      const word = (w: string): boolean => text.startsWith(w, i);
      const twoWords = (first: string, second: string, kind: TokenKind): boolean => {
        if (!word(first)) return false;
        i += first.length;
        skip();
        if (!word(second)) throw expectOperator(i);
        i += second.length;
        push(kind, at);
        return true;
      };
      if (word('contains')) { push('contains', at); i += 'contains'.length; continue; }
      if (twoWords('starts', 'with', 'starts with') || twoWords('ends', 'with', 'ends with') || twoWords('not', 'in', 'not in')) continue;
      if (word('in')) { push('in', at); i += 2; continue; }
      throw expectOperator();
    }
    if (text.startsWith('has(', i)) {
      i += 4;
      skip();
      const key = identifierAt(text, i);
      if (key === '') throw new SelectorError('has( needs a label name', i);
      i += key.length;
      skip();
      if (text[i] !== ')') throw new SelectorError(`expected ) to close has(${key}`, i);
      i++;
      push('has', at, key);
      continue;
    }
    const call = text.startsWith('all(', i) ? 'all' : text.startsWith('global(', i) ? 'global' : undefined;
    if (call !== undefined) {
      i += call.length + 1;
      skip();
      if (text[i] !== ')') throw new SelectorError(`expected ) to close ${call}(`, i);
      i++;
      push(call, at);
      continue;
    }
    const ident = identifierAt(text, i);
    if (ident === '') throw new SelectorError(`unexpected character ${describeChar(c)}`, at);
    push('label', at, ident);
    i += ident.length;
  }
}

const WORDS: Record<TokenKind, string> = {
  label: 'a label', string: 'a quoted string', '{': '{', '}': '}', ',': ',', '==': '==', '!=': '!=', in: 'in', '!': '!',
  'not in': 'not in', contains: 'contains', 'starts with': 'starts with', 'ends with': 'ends with', all: 'all()',
  global: 'global()', has: 'has()', '(': '(', ')': ')', '&&': '&&', '||': '||', eof: 'the end of the selector',
};

const shown = (t: Token): string => (t.kind === 'label' ? `label "${t.value}"` : t.kind === 'string' ? `string "${t.value}"` : WORDS[t.kind]);

class Parser {
  private i = 0;
  constructor(private readonly tokens: Token[]) {}

  private peek(): Token {
    return this.tokens[this.i] as Token;
  }

  private next(): Token {
    const t = this.peek();
    if (t.kind !== 'eof') this.i++;
    return t;
  }

  parseRoot(): SelectorNode {
    if (this.peek().kind === 'eof') return { op: 'all' };
    const node = this.parseOr();
    const rest = this.peek();
    if (rest.kind !== 'eof') throw new SelectorError(`unexpected ${shown(rest)} (expected && or || or the end of the selector)`, rest.at);
    return node;
  }

  // || binds loosest, then &&, then a (possibly negated) operation: parser.go's precedence.
  private parseOr(): SelectorNode {
    const of = [this.parseAnd()];
    while (this.peek().kind === '||') { this.next(); of.push(this.parseAnd()); }
    return of.length === 1 ? (of[0] as SelectorNode) : { op: 'or', of };
  }

  private parseAnd(): SelectorNode {
    const of = [this.parseOperation()];
    while (this.peek().kind === '&&') { this.next(); of.push(this.parseOperation()); }
    return of.length === 1 ? (of[0] as SelectorNode) : { op: 'and', of };
  }

  private parseOperation(): SelectorNode {
    let negated = false;
    while (this.peek().kind === '!') { this.next(); negated = !negated; }
    const node = this.parseTerm();
    return negated ? { op: 'not', of: node } : node;
  }

  private parseTerm(): SelectorNode {
    const t = this.next();
    switch (t.kind) {
      case 'has': return { op: 'has', key: t.value };
      case 'all': return { op: 'all' };
      case 'global': return { op: 'global' };
      case '(': {
        const inner = this.parseOr();
        const close = this.peek();
        if (close.kind !== ')') throw new SelectorError(`expected ) to close the ( at column ${t.at + 1}, found ${shown(close)}`, close.at);
        this.next();
        return inner;
      }
      case 'label': return this.parseComparison(t);
      default:
        throw new SelectorError(`unexpected ${shown(t)} (expected a label, has(), all(), ! or ( )`, t.at);
    }
  }

  private parseComparison(label: Token): SelectorNode {
    const op = this.next();
    const key = label.value;
    switch (op.kind) {
      case '==': case '!=': case 'contains': case 'starts with': case 'ends with': {
        const value = this.next();
        if (value.kind !== 'string') throw new SelectorError(`expected a quoted string after ${op.kind}, found ${shown(value)}`, value.at);
        return { op: op.kind, key, value: value.value };
      }
      case 'in': case 'not in': {
        const open = this.next();
        if (open.kind !== '{') throw new SelectorError(`expected a set literal {"a", "b"} after ${op.kind}, found ${shown(open)}`, open.at);
        const values: string[] = [];
        while (this.peek().kind === 'string') {
          values.push(this.next().value);
          if (this.peek().kind !== ',') break;
          this.next();
        }
        const close = this.next();
        if (close.kind !== '}') throw new SelectorError(`expected } or a quoted string in the set, found ${shown(close)}`, close.at);
        return { op: op.kind, key, values: [...new Set(values)].sort() };
      }
      default:
        throw new SelectorError(`expected an operator after label "${key}", found ${shown(op)}`, op.at);
    }
  }
}

/** Parses a selector; an empty (or blank) selector is `all()`. Errors carry a 1-based column into `text`. */
export function parseSelector(text: string): ParseResult {
  try {
    return { ok: true, selector: new Parser(tokenize(text)).parseRoot() };
  } catch (e) {
    if (e instanceof SelectorError) return { ok: false, message: e.message, column: e.at + 1 };
    throw e;
  }
}

/** Label lookup: undefined = the label is absent. */
export type Labels = (key: string) => string | undefined;

export function labelsOf(record: Readonly<Record<string, string>>): Labels {
  return (key) => (Object.prototype.hasOwnProperty.call(record, key) ? record[key] : undefined);
}

/** ast.go's Evaluate: absent labels fail every positive test; `!=` and `not in` hold for them. */
export function evaluateSelector(node: SelectorNode, labels: Labels): boolean {
  switch (node.op) {
    case 'all': case 'global': return true;
    case 'has': return labels(node.key) !== undefined;
    case '==': return labels(node.key) === node.value;
    case '!=': return labels(node.key) !== node.value;
    case 'contains': { const v = labels(node.key); return v !== undefined && v.includes(node.value); }
    case 'starts with': { const v = labels(node.key); return v !== undefined && v.startsWith(node.value); }
    case 'ends with': { const v = labels(node.key); return v !== undefined && v.endsWith(node.value); }
    case 'in': { const v = labels(node.key); return v !== undefined && node.values.includes(v); }
    case 'not in': { const v = labels(node.key); return v === undefined || !node.values.includes(v); }
    case 'not': return !evaluateSelector(node.of, labels);
    case 'and': return node.of.every((n) => evaluateSelector(n, labels));
    case 'or': return node.of.some((n) => evaluateSelector(n, labels));
  }
}

function quote(s: string): string {
  return s.includes('"') ? `'${s}'` : `"${s}"`;
}

/** The canonical text (ast.go's String): parses back to an equivalent selector. */
export function selectorText(node: SelectorNode): string {
  switch (node.op) {
    case 'all': return 'all()';
    case 'global': return 'global()';
    case 'has': return `has(${node.key})`;
    case 'in': case 'not in': return `${node.key} ${node.op} {${node.values.map(quote).join(', ')}}`;
    case 'not': return `!${wrapped(node.of)}`;
    case 'and': return node.of.map(wrapped).join(' && ');
    case 'or': return node.of.map((n) => (n.op === 'or' ? `(${selectorText(n)})` : selectorText(n))).join(' || ');
    default: return `${node.key} ${node.op} ${quote(node.value)}`;
  }
}

function wrapped(node: SelectorNode): string {
  return node.op === 'and' || node.op === 'or' ? `(${selectorText(node)})` : selectorText(node);
}

/** Every label key the selector reads. */
export function selectorKeys(node: SelectorNode, out: Set<string> = new Set()): Set<string> {
  if ('key' in node) out.add(node.key);
  else if (node.op === 'not') selectorKeys(node.of, out);
  else if (node.op === 'and' || node.op === 'or') for (const n of node.of) selectorKeys(n, out);
  return out;
}

/** True when `global()` occurs anywhere in the selector. */
export function usesGlobal(node: SelectorNode): boolean {
  if (node.op === 'global') return true;
  if (node.op === 'not') return usesGlobal(node.of);
  if (node.op === 'and' || node.op === 'or') return node.of.some(usesGlobal);
  return false;
}
