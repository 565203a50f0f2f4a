// Calico's label selector language, parsed once and evaluated against a label map the way
// libcalico-go's selector package does:
//   all()  global()  has(k)  k == "v"  k != "v"  k in {"a","b"}  k not in {…}
//   k contains "s"  k starts with "s"  k ends with "s"  !e  e && e  e || e  ( e )
// Precedence: ! binds tightest, then &&, then ||. Strings take single or double quotes.
// A missing label makes ==, in, contains, starts with, ends with false and !=, not in true.
// An empty selector is all().

export type Labels = Readonly<Record<string, string>>;

export type SelectorNode =
  | { op: 'all' }
  | { op: 'global' }
  | { op: 'has'; key: string }
  | { op: '==' | '!=' | 'contains' | 'starts with' | 'ends with'; key: string; value: string }
  | { op: 'in' | 'not in'; key: string; values: string[] }
  | { op: '!'; expr: SelectorNode }
  | { op: '&&' | '||'; exprs: SelectorNode[] };

export class SelectorError extends Error {
  readonly code = 'ESELECTOR';
  constructor(
    readonly selector: string,
    readonly position: number,
    reason: string,
  ) {
    super(`invalid selector "${selector}" at position ${position}: ${reason}`);
    this.name = 'SelectorError';
  }
}

export interface Selector {
  readonly source: string;
  readonly ast: SelectorNode;
  matches(labels: Labels | undefined): boolean;
  /** Canonical text (double quotes, single spaces), stable for comparison. */
  toString(): string;
}

type Tok =
  | { t: 'id'; v: string; pos: number }
  | { t: 'str'; v: string; pos: number }
  | { t: 'sym'; v: string; pos: number }
  | { t: 'end'; pos: number };

const KEY_RE = /[A-Za-z0-9_./-]/;

function tokenize(src: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const two = src.slice(i, i + 2);
    if (two === '==' || two === '!=' || two === '&&' || two === '||') {
      out.push({ t: 'sym', v: two, pos: i });
      i += 2;
      continue;
    }
    if ('!(){},'.includes(c)) {
      out.push({ t: 'sym', v: c, pos: i });
      i++;
      continue;
    }
    if (c === '"' || c === "'") {
      const end = src.indexOf(c, i + 1);
      if (end < 0) throw new SelectorError(src, i, 'unterminated string');
      out.push({ t: 'str', v: src.slice(i + 1, end), pos: i });
      i = end + 1;
      continue;
    }
    if (KEY_RE.test(c)) {
      let j = i;
      while (j < src.length && KEY_RE.test(src[j]!)) j++;
      out.push({ t: 'id', v: src.slice(i, j), pos: i });
      i = j;
      continue;
    }
    throw new SelectorError(src, i, `unexpected character "${c}"`);
  }
  out.push({ t: 'end', pos: src.length });
  return out;
}

class Parser {
  private i = 0;
  constructor(
    private readonly src: string,
    private readonly toks: Tok[],
  ) {}

  private peek(): Tok {
    return this.toks[this.i]!;
  }
  private next(): Tok {
    return this.toks[this.i++]!;
  }
  private fail(tok: Tok, reason: string): never {
    throw new SelectorError(this.src, tok.pos, reason);
  }
  private isSym(v: string, tok = this.peek()): boolean {
    return tok.t === 'sym' && tok.v === v;
  }
  private isWord(v: string, tok = this.peek()): boolean {
    return tok.t === 'id' && tok.v === v;
  }
  private expectSym(v: string): void {
    const tok = this.next();
    if (!this.isSym(v, tok)) this.fail(tok, `expected "${v}"`);
  }

  parse(): SelectorNode {
    if (this.peek().t === 'end') return { op: 'all' };
    const e = this.or();
    const tok = this.peek();
    if (tok.t !== 'end') this.fail(tok, `unexpected "${describe(tok)}"`);
    return e;
  }

  private or(): SelectorNode {
    const exprs = [this.and()];
    while (this.isSym('||')) {
      this.next();
      exprs.push(this.and());
    }
    return exprs.length === 1 ? exprs[0]! : { op: '||', exprs };
  }

  private and(): SelectorNode {
    const exprs = [this.unary()];
    while (this.isSym('&&')) {
      this.next();
      exprs.push(this.unary());
    }
    return exprs.length === 1 ? exprs[0]! : { op: '&&', exprs };
  }

  private unary(): SelectorNode {
    if (this.isSym('!')) {
      this.next();
      return { op: '!', expr: this.unary() };
    }
    if (this.isSym('(')) {
      this.next();
      const e = this.or();
      this.expectSym(')');
      return e;
    }
    return this.term();
  }

  private term(): SelectorNode {
    const tok = this.next();
    if (tok.t !== 'id')
      this.fail(tok, tok.t === 'end' ? 'unexpected end of selector' : `expected a label or function, got "${describe(tok)}"`);
    if ((tok.v === 'all' || tok.v === 'global' || tok.v === 'has') && this.isSym('(')) {
      this.next();
      if (tok.v === 'has') {
        const k = this.next();
        if (k.t !== 'id') this.fail(k, 'has() needs a label name');
        this.expectSym(')');
        return { op: 'has', key: k.v };
      }
      this.expectSym(')');
      return { op: tok.v as 'all' | 'global' };
    }
    const key = tok.v;
    const op = this.next();
    if (this.isSym('==', op) || this.isSym('!=', op)) return { op: op.t === 'sym' ? (op.v as '==' | '!=') : '==', key, value: this.str() };
    if (this.isWord('in', op)) return { op: 'in', key, values: this.set() };
    if (this.isWord('not', op)) {
      const inTok = this.next();
      if (!this.isWord('in', inTok)) this.fail(inTok, 'expected "in" after "not"');
      return { op: 'not in', key, values: this.set() };
    }
    if (this.isWord('contains', op)) return { op: 'contains', key, value: this.str() };
    if (this.isWord('starts', op) || this.isWord('ends', op)) {
      const w = this.next();
      if (!this.isWord('with', w)) this.fail(w, `expected "with" after "${(op as { v: string }).v}"`);
      return { op: (op as { v: string }).v === 'starts' ? 'starts with' : 'ends with', key, value: this.str() };
    }
    return this.fail(op, `expected an operator (==, !=, in, not in, contains, starts with, ends with) after label "${key}"`);
  }

  private str(): string {
    const tok = this.next();
    if (tok.t !== 'str') this.fail(tok, `expected a quoted string, got "${describe(tok)}"`);
    return tok.v;
  }

  private set(): string[] {
    this.expectSym('{');
    const values: string[] = [];
    if (this.isSym('}')) {
      this.next();
      return values;
    }
    for (;;) {
      values.push(this.str());
      const tok = this.next();
      if (this.isSym('}', tok)) return values;
      if (!this.isSym(',', tok)) this.fail(tok, 'expected "," or "}" in a set');
    }
  }
}

function describe(tok: Tok): string {
  return tok.t === 'end' ? 'end of selector' : tok.t === 'str' ? `"${tok.v}"` : tok.v;
}

export function evaluate(n: SelectorNode, labels: Labels): boolean {
  switch (n.op) {
    case 'all':
    case 'global':
      return true;
    case 'has':
      return Object.hasOwn(labels, n.key);
    case '==':
      return Object.hasOwn(labels, n.key) && labels[n.key] === n.value;
    case '!=':
      return !Object.hasOwn(labels, n.key) || labels[n.key] !== n.value;
    case 'in':
      return Object.hasOwn(labels, n.key) && n.values.includes(labels[n.key]!);
    case 'not in':
      return !Object.hasOwn(labels, n.key) || !n.values.includes(labels[n.key]!);
    case 'contains':
      return Object.hasOwn(labels, n.key) && labels[n.key]!.includes(n.value);
    case 'starts with':
      return Object.hasOwn(labels, n.key) && labels[n.key]!.startsWith(n.value);
    case 'ends with':
      return Object.hasOwn(labels, n.key) && labels[n.key]!.endsWith(n.value);
    case '!':
      return !evaluate(n.expr, labels);
    case '&&':
      return n.exprs.every((e) => evaluate(e, labels));
    case '||':
      return n.exprs.some((e) => evaluate(e, labels));
  }
}

const q = (s: string) => (s.includes('"') ? `'${s}'` : `"${s}"`);

export function formatSelector(n: SelectorNode, nested = false): string {
  switch (n.op) {
    case 'all':
      return 'all()';
    case 'global':
      return 'global()';
    case 'has':
      return `has(${n.key})`;
    case '==':
    case '!=':
    case 'contains':
    case 'starts with':
    case 'ends with':
      return `${n.key} ${n.op} ${q(n.value)}`;
    case 'in':
    case 'not in':
      return `${n.key} ${n.op} {${n.values.map(q).join(', ')}}`;
    case '!':
      return `!${n.expr.op === '&&' || n.expr.op === '||' ? `(${formatSelector(n.expr)})` : formatSelector(n.expr, true)}`;
    case '&&': {
      const s = n.exprs.map((e) => (e.op === '||' ? `(${formatSelector(e)})` : formatSelector(e, true))).join(' && ');
      return nested ? `(${s})` : s;
    }
    case '||': {
      const s = n.exprs.map((e) => formatSelector(e, true)).join(' || ');
      return nested ? `(${s})` : s;
    }
  }
}

/** Parse a Calico selector; throws SelectorError naming the position of the problem. */
export function parseSelector(source: string): Selector {
  const ast = new Parser(source, tokenize(source)).parse();
  return {
    source,
    ast,
    matches: (labels) => evaluate(ast, labels ?? {}),
    toString: () => formatSelector(ast),
  };
}
