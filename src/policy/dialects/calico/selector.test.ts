// The Calico selector parser: upstream's table (libcalico-go lib/selector/parser/parser_test.go, tokenizer_test.go),
// error columns, and a property test against a naive interpreter of randomly generated selectors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { evaluateSelector, labelsOf, parseSelector, selectorText, type SelectorNode } from './selector.js';

function parsed(text: string): SelectorNode {
  const r = parseSelector(text);
  assert.ok(r.ok, `${text}: ${r.ok ? '' : `${r.message} at column ${r.column}`}`);
  return r.selector;
}

const matches = (text: string, labels: Record<string, string>): boolean => evaluateSelector(parsed(text), labelsOf(labels));

// [selector, labels that match, labels that do not] from parser_test.go's selectorTests.
const UPSTREAM: [string, Record<string, string>[], Record<string, string>[]][] = [
  ['a == "b"', [{ a: 'b' }, { a: 'b', c: 'd' }], [{}, { a: 'c' }, { c: 'd' }]],
  ['a == "b" && c == "d"', [{ a: 'b', c: 'd' }], [{}, { a: 'b', c: 'e' }, { a: 'c', c: 'd' }, { c: 'd' }, { a: 'b' }]],
  ['a == "b" || c == "d"', [{ a: 'b', c: 'd' }, { a: 'b' }, { c: 'd' }], [{}, { a: 'e', c: 'e' }, { c: 'e' }, { a: 'e' }]],
  [`a in {"'", '"', "c"}`, [{ a: 'c' }, { a: '"' }, { a: '\'' }], [{}, { a: 'e' }]],
  [`a not in {"'", '"', "c"}`, [{}, { a: 'e' }], [{ a: 'c' }, { a: '"' }, { a: '\'' }]],
  ['a == \'a\'', [{ a: 'a' }], [{ a: 'b' }, {}]],
  ['a != "b"', [{ a: 'a' }], []],
  ['a != "a"', [{}], [{ a: 'a' }]],
  ['a contains "a"', [{ a: 'a' }, { a: 'bab' }, { a: 'aaa', b: 'c' }], [{}, { a: 'b' }, { b: 'aaa' }]],
  ['a starts with "a"', [{ a: 'a' }, { a: 'abb' }, { a: 'aaa', b: 'c' }], [{}, { a: 'b' }, { a: 'baa' }, { b: 'aaa' }]],
  ['a ends with "a"', [{ a: 'a' }, { a: 'bba' }, { a: 'aaa', b: 'c' }], [{}, { a: 'b' }, { a: 'aab' }, { b: 'aaa' }]],
  ['!a in {"a"}', [{ a: 'b' }], []],
  ['a in {"a", "b"}', [{ a: 'a' }, { a: 'b' }], [{ a: 'c' }]],
  ['a not in {"d", "e"}', [{ a: 'a' }], []],
  ['a not in {"a"}', [], [{ a: 'a' }]],
  ['has(a)', [{ a: 'b' }], []],
  ['has(b)', [], [{ a: 'b' }]],
  ['!has(a)', [{ b: 'b' }], [{ a: 'b' }]],
  ['!!has(b)', [], [{ a: 'b' }]],
  ['! has(a)', [], [{ a: 'b' }]],
  ['!!! has(a)', [], [{ a: 'b' }]],
  ['!! ! has(a)', [], [{ a: 'b' }]],
  ['', [{}, { a: 'b' }], []],
  [' ', [{}], []],
  ['all()', [{}], []],
  [' all()', [{ a: 'b' }], []],
  ['global()', [{}, { a: 'b' }], []],
  ['a == \'a1\' && b != \'b1\'', [], [{ a: 'a1', b: 'b1' }]],
  ['a != \'a1\' && !b == \'b1\'', [], [{ a: 'a1', b: 'b1' }]],
  ['!a == \'a1\' && b == \'b1\'', [], [{ a: 'a1', b: 'b1' }]],
  ['has(a) && !has(b)', [{ a: 'a' }], []],
  ['!(!has(a) || has(b))', [{ a: 'a' }], []],
  ['!(has(b) || !has(a))', [{ a: 'a' }], []],
  ['a == \'a1\' || b != \'b1\'', [{ a: 'a1', b: 'b1' }], []],
  ['a != \'a1\' || b != \'b1\'', [], [{ a: 'a1', b: 'b1' }]],
  ['! a == \'a1\' || ! b == \'b1\'', [], [{ a: 'a1', b: 'b1' }]],
  // Calico's own identity labels (WorkloadEndpoint label constants) are ordinary keys to the parser.
  ['projectcalico.org/namespace == "prod" && projectcalico.org/serviceaccount in {"api", "web"}',
    [{ 'projectcalico.org/namespace': 'prod', 'projectcalico.org/serviceaccount': 'web' }],
    [{ 'projectcalico.org/namespace': 'dev', 'projectcalico.org/serviceaccount': 'web' }, { 'projectcalico.org/namespace': 'prod' }]],
];

test('upstream parser table: matches and non-matches', () => {
  for (const [sel, yes, no] of UPSTREAM) {
    for (const l of yes) assert.equal(matches(sel, l), true, `${sel} should match ${JSON.stringify(l)}`);
    for (const l of no) assert.equal(matches(sel, l), false, `${sel} should not match ${JSON.stringify(l)}`);
    // The canonical text parses back to a selector that decides alike (parser_test.go "after canonicalising").
    const again = parsed(selectorText(parsed(sel)));
    for (const l of [...yes, ...no]) assert.equal(evaluateSelector(again, labelsOf(l)), matches(sel, l), `canonical ${selectorText(parsed(sel))}`);
  }
});

test('canonical text (parser_test.go canonicalisationTests)', () => {
  const cases: [string, string][] = [
    ['', 'all()'],
    [' all() ', 'all()'],
    [' (all() )', 'all()'],
    ['! (has( b)||! has(a ))', '!(has(b) || !has(a))'],
    ['! (a == "b"&&! c != "d")', '!(a == "b" && !c != "d")'],
    ['a == "\'"', 'a == "\'"'],
    ['a == \'"\'', 'a == \'"\''],
    ['a startswith \'"\'', 'a starts with \'"\''],
    ['a endswith "\'"', 'a ends with "\'"'],
    ['a!=\'"\'', 'a != \'"\''],
    ['a in {"d", "a", "b"}', 'a in {"a", "b", "d"}'],
    ['a in {"z", "z", "x", "y", "x", "a"}', 'a in {"a", "x", "y", "z"}'],
    ['a in {"a", }', 'a in {"a"}'],
    ['a in {}', 'a in {}'],
  ];
  for (const [input, want] of cases) assert.equal(selectorText(parsed(input)), want, input);
});

test('bad selectors are refused with the column of the problem (parser_test.go badSelectors)', () => {
  const bad: [string, number, RegExp][] = [
    ['b == b', 6, /quoted string/],
    ['b contains b', 12, /quoted string/],
    ['b starts with b', 15, /quoted string/],
    ['\'b1\' == b', 1, /unexpected string/],
    ['b', 2, /operator after label "b"/],
    ['a b', 3, /expected an operator/],
    ['!', 2, /end of the selector/],
    ['foo == "bar" &', 14, /&&/],
    ['foo == "bar" |', 14, /\|\|/],
    ['foo != ||', 8, /quoted string/],
    ['foo in {"", ||', 13, /expected }/],
    ['foo in ""', 8, /set literal/],
    ['"FOO', 1, /unterminated/],
    ['"FOO\'', 1, /unterminated/],
    ['\'FOO', 1, /unterminated/],
    ['(', 2, /end of the selector/],
    ['(a == "foo"', 12, /expected \) to close the \( at column 1/],
    [')', 1, /unexpected \)/],
    ['()', 2, /unexpected \)/],
    ['%', 1, /unexpected character "%"/],
    ['a == "b" && %', 13, /unexpected character/],
    ['a == "b" || %', 13, /unexpected character/],
    ['a ', 3, /operator after label "a"/],
    ['has(foo) &&', 12, /end of the selector/],
    ['has()', 5, /has\( needs a label name/],
    ['a = "b"', 3, /expected ==/],
    ['a == "b"\n&& c == "d"', 9, /unexpected character a newline/],
    ['a starts "x"', 10, /expected an operator/],
    ['has(a) has(b)', 8, /expected && or \|\|/],
  ];
  for (const [sel, column, message] of bad) {
    const r = parseSelector(sel);
    assert.equal(r.ok, false, `${JSON.stringify(sel)} must be refused`);
    if (!r.ok) {
      assert.match(r.message, message, JSON.stringify(sel));
      assert.equal(r.column, column, `${JSON.stringify(sel)}: ${r.message}`);
    }
  }
});

// ---------------------------------------------------------------------------------------------------
// Property: a random selector tree, printed with random spacing, quoting and redundant parentheses, parses to
// a selector that decides every label set exactly as a naive interpreter of the tree does.

type Tree =
  | { t: 'all' } | { t: 'has'; k: string } | { t: 'cmp'; op: '==' | '!=' | 'contains' | 'starts with' | 'ends with'; k: string; v: string }
  | { t: 'set'; op: 'in' | 'not in'; k: string; vs: string[] } | { t: 'not'; a: Tree } | { t: 'and' | 'or'; a: Tree; b: Tree };

const KEYS = ['a', 'b', 'app', 'projectcalico.org/namespace', 'x_y-z.w/v'];
const VALUES = ['', 'a', 'b', 'web', 'we', 'eb', 'it\'s', 'say "hi"', 'a b'];
const key = fc.constantFrom(...KEYS);
const value = fc.constantFrom(...VALUES);

const tree: fc.Arbitrary<Tree> = fc.letrec<{ node: Tree }>((tie) => ({
  node: fc.oneof(
    { maxDepth: 4, depthIdentifier: 'sel' },
    fc.constant<Tree>({ t: 'all' }),
    key.map((k): Tree => ({ t: 'has', k })),
    fc.record({ op: fc.constantFrom('==', '!=', 'contains', 'starts with', 'ends with' as const), k: key, v: value }).map((r): Tree => ({ t: 'cmp', ...r })),
    fc.record({ op: fc.constantFrom('in', 'not in' as const), k: key, vs: fc.array(value, { maxLength: 3 }) }).map((r): Tree => ({ t: 'set', ...r })),
    tie('node').map((a): Tree => ({ t: 'not', a })),
    fc.record({ t: fc.constantFrom('and', 'or' as const), a: tie('node'), b: tie('node') }).map((r): Tree => r as Tree),
  ),
})).node;

/** The reference: the tree's meaning written out directly, with no parser involved. */
function naive(t: Tree, labels: Record<string, string>): boolean {
  const v = Object.prototype.hasOwnProperty.call(labels, 'k' in t ? t.k : '') ? labels[(t as { k: string }).k] : undefined;
  switch (t.t) {
    case 'all': return true;
    case 'has': return v !== undefined;
    case 'cmp':
      if (t.op === '!=') return v !== t.v;
      if (v === undefined) return false;
      return t.op === '==' ? v === t.v : t.op === 'contains' ? v.includes(t.v) : t.op === 'starts with' ? v.startsWith(t.v) : v.endsWith(t.v);
    case 'set': return t.op === 'in' ? v !== undefined && t.vs.includes(v) : v === undefined || !t.vs.includes(v);
    case 'not': return !naive(t.a, labels);
    case 'and': return naive(t.a, labels) && naive(t.b, labels);
    case 'or': return naive(t.a, labels) || naive(t.b, labels);
  }
}

/** Prints a tree with choices drawn from `pick`; operands of && / || / ! are parenthesized so precedence is the tree's. */
function print(t: Tree, pick: () => number): string {
  const sp = () => [' ', '', '  ', '\t'][pick() % 4] as string;
  const q = (s: string) => (s.includes('"') ? `'${s}'` : s.includes('\'') ? `"${s}"` : pick() % 2 ? `'${s}'` : `"${s}"`);
  const paren = (s: string) => (pick() % 3 === 0 ? `(${sp()}${s}${sp()})` : s);
  const inner = (a: Tree) => (a.t === 'and' || a.t === 'or' || a.t === 'not' ? `(${print(a, pick)})` : paren(print(a, pick)));
  switch (t.t) {
    case 'all': return `all(${sp()})`;
    case 'has': return `has(${sp()}${t.k}${sp()})`;
    // A label needs a space before a word operator, never before a symbol.
    case 'cmp': return `${t.k}${t.op === '==' || t.op === '!=' ? sp() : ' '}${t.op}${sp()}${q(t.v)}`;
    case 'set': return `${t.k} ${t.op}${sp()}{${t.vs.map(q).join(`,${sp()}`)}}`;
    case 'not': return `!${sp()}${inner(t.a)}`;
    case 'and': return `${inner(t.a)}${sp()}&&${sp()}${inner(t.b)}`;
    case 'or': return `${inner(t.a)}${sp()}||${sp()}${inner(t.b)}`;
  }
}

const labelSet = fc.dictionary(key, value, { maxKeys: 4 });

test('property: parse(print(tree)) decides like the naive interpreter of the tree, and so does its canonical text', () => {
  fc.assert(fc.property(tree, fc.array(fc.nat(), { minLength: 1, maxLength: 64 }), fc.array(labelSet, { minLength: 1, maxLength: 6 }), (t, choices, sets) => {
    let n = 0;
    const pick = () => choices[n++ % choices.length] as number;
    const text = print(t, pick);
    const r = parseSelector(text);
    if (!r.ok) throw new Error(`${JSON.stringify(text)} did not parse: ${r.message} at column ${r.column}`);
    const canonical = parseSelector(selectorText(r.selector));
    if (!canonical.ok) throw new Error(`canonical ${selectorText(r.selector)} did not parse: ${canonical.message}`);
    for (const labels of sets) {
      const want = naive(t, labels);
      if (evaluateSelector(r.selector, labelsOf(labels)) !== want) throw new Error(`${text} on ${JSON.stringify(labels)}: expected ${want}`);
      if (evaluateSelector(canonical.selector, labelsOf(labels)) !== want) throw new Error(`canonical ${selectorText(r.selector)} on ${JSON.stringify(labels)}`);
    }
  }), { numRuns: 2000 });
});

test('property: no input makes the parser throw; a refusal always points inside the text (or just past it)', () => {
  const alphabet = fc.constantFrom('a', 'b', ' ', '=', '!', '&', '|', '(', ')', '{', '}', ',', '"', '\'', 'in', 'not', 'has(', 'all(', 'starts', 'with', 'contains', '%', '\n');
  fc.assert(fc.property(fc.array(alphabet, { maxLength: 24 }).map((a) => a.join('')), (text) => {
    const r = parseSelector(text);
    if (!r.ok && (r.column < 1 || r.column > text.length + 1)) throw new Error(`${JSON.stringify(text)}: column ${r.column}`);
  }), { numRuns: 3000 });
});
