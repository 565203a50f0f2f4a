import t from 'tap';
import { parseSelector, SelectorError } from '../../../src/datastore/selector.js';

const L = { role: 'rr', zone: 'eu-1', 'kubernetes.io/hostname': 'n1', empty: '' };

t.test('operators evaluate as Calico does (missing label: == false, != true)', async (t) => {
  const cases: [string, boolean][] = [
    ['all()', true],
    ['', true],
    ['global()', true],
    ["role == 'rr'", true],
    ['role == "client"', false],
    ['missing == "x"', false],
    ['role != "rr"', false],
    ['missing != "x"', true],
    ['has(role)', true],
    ['has(missing)', false],
    ['!has(missing)', true],
    ['! has(role)', false],
    ["zone in {'eu-1', 'us-1'}", true],
    ['zone in {}', false],
    ['missing in {"a"}', false],
    ['zone not in {"eu-1"}', false],
    ['missing not in {"a"}', true],
    ['zone contains "u-"', true],
    ['zone starts with "eu"', true],
    ['zone ends with "-2"', false],
    ['missing contains ""', false],
    ['kubernetes.io/hostname == "n1"', true],
    ['empty == ""', true],
    ['has(empty)', true],
    ["role == 'rr' && zone == 'eu-1'", true],
    ["role == 'rr' && zone == 'us'", false],
    ["role == 'x' || zone == 'eu-1'", true],
    ["role == 'x' || zone == 'us'", false],
    // && binds tighter than ||
    ["role == 'x' && zone == 'us' || has(role)", true],
    ["role == 'x' && (zone == 'us' || has(role))", false],
    ["!(role == 'rr' && has(zone))", false],
    ['!!has(role)', true],
  ];
  for (const [sel, want] of cases) t.equal(parseSelector(sel).matches(L), want, sel);
  t.equal(parseSelector('has(role)').matches(undefined), false, 'no labels');
});

t.test('canonical text round-trips', async (t) => {
  for (const s of ["role=='rr'", "a in {'x','y'} && !has(b) || c starts with 'z'", '!(a == "1" || b == "2")']) {
    const once = parseSelector(s).toString();
    t.equal(parseSelector(once).toString(), once, `${s} -> ${once}`);
  }
  t.equal(parseSelector("role=='rr'").toString(), 'role == "rr"');
});

t.test('syntax errors name the position', async (t) => {
  for (const bad of [
    'role ==',
    'role = "x"',
    '(has(a)',
    'has()',
    "a in {'x' 'y'}",
    'a not "x"',
    '"x" == a',
    'a == "x" &&',
    'a == "x" b',
    "a == 'x",
  ]) {
    t.throws(() => parseSelector(bad), SelectorError, bad);
  }
  const e = (() => {
    try {
      parseSelector('role == rr');
    } catch (err) {
      return err as SelectorError;
    }
    return undefined;
  })();
  t.equal(e?.position, 8);
  t.match(e?.message, /invalid selector "role == rr" at position 8: expected a quoted string/);
});
