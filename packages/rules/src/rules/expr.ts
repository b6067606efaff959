// The condition language: a small expression grammar over audit-record
// fields, parsed into an AST with source offsets (for diagnostics) and later
// compiled to closures (compile.ts).
//
//   expr      := or
//   or        := and ('or' and)*
//   and       := not ('and' not)*
//   not       := 'not' not | atom
//   atom      := '(' expr ')' | predicate | macro
//   predicate := field op value | field 'not' op value | field 'exists' | field
//   value     := string | number | word | '(' value (',' value)* ')'

/** Comparison operators of the condition language. */
export type CompareOp =
  | '='
  | '!='
  | '<'
  | '<='
  | '>'
  | '>='
  | 'in'
  | 'iin'
  | 'contains'
  | 'icontains'
  | 'startswith'
  | 'istartswith'
  | 'endswith'
  | 'iendswith'
  | 'iequals'
  | 'matches'
  | 'imatches'
  | 'in_cidr'
  | 'within';

const WORD_OPS = new Set<string>(['in', 'iin', 'contains', 'icontains', 'startswith', 'istartswith', 'endswith', 'iendswith', 'iequals', 'matches', 'imatches', 'in_cidr', 'within']);

/** A literal of the condition language; `bare` marks unquoted words (list names expand). */
export interface ValueNode {
  readonly text: string;
  readonly bare: boolean;
  readonly offset: number;
}

/** Condition syntax tree. */
export type ExprNode =
  | { readonly kind: 'and' | 'or'; readonly items: ExprNode[]; readonly offset: number }
  | { readonly kind: 'not'; readonly item: ExprNode; readonly offset: number }
  | { readonly kind: 'cmp'; readonly field: string; readonly op: CompareOp; readonly negate: boolean; readonly values: ValueNode[]; readonly list: boolean; readonly offset: number }
  | { readonly kind: 'exists'; readonly field: string; readonly offset: number }
  | { readonly kind: 'bool'; readonly field: string; readonly offset: number }
  | { readonly kind: 'ref'; readonly name: string; readonly offset: number }
  | { readonly kind: 'const'; readonly value: boolean; readonly offset: number };

/** A syntax error at an offset of the condition text. */
export class ConditionSyntaxError extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message);
  }
}

const enum T {
  Word,
  String,
  Op,
  LParen,
  RParen,
  Comma,
  End,
}

interface Tok {
  t: T;
  text: string;
  offset: number;
}

function lex(src: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  const n = src.length;
  while (i < n) {
    const c = src.charCodeAt(i);
    if (c === 32 || c === 9 || c === 10 || c === 13) {
      i++;
      continue;
    }
    const start = i;
    if (c === 0x28) {
      out.push({ t: T.LParen, text: '(', offset: i++ });
      continue;
    }
    if (c === 0x29) {
      out.push({ t: T.RParen, text: ')', offset: i++ });
      continue;
    }
    if (c === 0x2c) {
      out.push({ t: T.Comma, text: ',', offset: i++ });
      continue;
    }
    if (c === 0x27 || c === 0x22) {
      i++;
      let s = '';
      for (;;) {
        if (i >= n) throw new ConditionSyntaxError('unterminated string', start);
        const ch = src.charCodeAt(i);
        // Only \\ and \<quote> are escapes, so regular expressions keep \b, \s, \d.
        if (ch === 0x5c && i + 1 < n && (src.charCodeAt(i + 1) === c || src.charCodeAt(i + 1) === 0x5c)) {
          s += src[i + 1];
          i += 2;
          continue;
        }
        if (ch === c) {
          i++;
          break;
        }
        s += src[i];
        i++;
      }
      out.push({ t: T.String, text: s, offset: start });
      continue;
    }
    if (c === 0x3d || c === 0x21 || c === 0x3c || c === 0x3e) {
      const two = src.slice(i, i + 2);
      if (two === '==' || two === '!=' || two === '<=' || two === '>=' || two === '<>') {
        out.push({ t: T.Op, text: two === '==' ? '=' : two === '<>' ? '!=' : two, offset: i });
        i += 2;
        continue;
      }
      if (c === 0x21) throw new ConditionSyntaxError("unexpected '!'", i);
      out.push({ t: T.Op, text: src[i]!, offset: i });
      i++;
      continue;
    }
    // bare word: field names, numbers, IP addresses, CIDRs, times, list names
    while (i < n) {
      const ch = src.charCodeAt(i);
      if (ch <= 32 || ch === 0x28 || ch === 0x29 || ch === 0x2c || ch === 0x27 || ch === 0x22 || ch === 0x3d || ch === 0x21 || ch === 0x3c || ch === 0x3e) break;
      i++;
    }
    if (i === start) throw new ConditionSyntaxError(`unexpected character '${src[i]}'`, i);
    out.push({ t: T.Word, text: src.slice(start, i), offset: start });
  }
  out.push({ t: T.End, text: '', offset: n });
  return out;
}

/** Parses a condition; throws {@link ConditionSyntaxError}. */
export function parseCondition(src: string): ExprNode {
  const toks = lex(src);
  let p = 0;
  const peek = (): Tok => toks[p]!;
  const isWord = (w: string): boolean => peek().t === T.Word && peek().text.toLowerCase() === w;

  function parseOr(): ExprNode {
    const first = parseAnd();
    if (!isWord('or')) return first;
    const items = [first];
    while (isWord('or')) {
      p++;
      items.push(parseAnd());
    }
    return { kind: 'or', items, offset: first.offset };
  }
  function parseAnd(): ExprNode {
    const first = parseNot();
    if (!isWord('and')) return first;
    const items = [first];
    while (isWord('and')) {
      p++;
      items.push(parseNot());
    }
    return { kind: 'and', items, offset: first.offset };
  }
  function parseNot(): ExprNode {
    if (isWord('not')) {
      const off = peek().offset;
      p++;
      return { kind: 'not', item: parseNot(), offset: off };
    }
    return parseAtom();
  }
  function parseValue(): ValueNode {
    const tk = peek();
    if (tk.t === T.String) {
      p++;
      return { text: tk.text, bare: false, offset: tk.offset };
    }
    if (tk.t === T.Word) {
      p++;
      return { text: tk.text, bare: true, offset: tk.offset };
    }
    throw new ConditionSyntaxError(tk.t === T.End ? 'expected a value, found the end of the condition' : `expected a value, found '${tk.text}'`, tk.offset);
  }
  function parseAtom(): ExprNode {
    const tk = peek();
    if (tk.t === T.LParen) {
      p++;
      const e = parseOr();
      if (peek().t !== T.RParen) throw new ConditionSyntaxError(peek().t === T.End ? "missing ')'" : `expected ')', found '${peek().text}'`, peek().offset);
      p++;
      return e;
    }
    if (tk.t !== T.Word) throw new ConditionSyntaxError(tk.t === T.End ? 'expected a condition, found the end of the text' : `expected a field or macro name, found '${tk.text}'`, tk.offset);
    const lw = tk.text.toLowerCase();
    if (lw === 'and' || lw === 'or') throw new ConditionSyntaxError(`expected a condition before '${tk.text}'`, tk.offset);
    if (lw === 'true' || lw === 'false') {
      p++;
      return { kind: 'const', value: lw === 'true', offset: tk.offset };
    }
    p++;
    const field = tk.text;
    // operator?
    let negate = false;
    let nx = peek();
    if (nx.t === T.Word && nx.text.toLowerCase() === 'not') {
      const after = toks[p + 1]!;
      if (after.t === T.Word && WORD_OPS.has(after.text.toLowerCase())) {
        negate = true;
        p++;
        nx = peek();
      }
    }
    let op: CompareOp | undefined;
    if (nx.t === T.Op) op = nx.text as CompareOp;
    else if (nx.t === T.Word) {
      const w = nx.text.toLowerCase();
      if (WORD_OPS.has(w)) op = w as CompareOp;
      else if (w === 'exists') {
        p++;
        return { kind: 'exists', field, offset: tk.offset };
      }
    }
    if (op === undefined) {
      // a macro reference or a boolean field; the compiler decides which
      return { kind: 'ref', name: field, offset: tk.offset };
    }
    p++;
    const values: ValueNode[] = [];
    let list = false;
    if (peek().t === T.LParen) {
      list = true;
      p++;
      if (peek().t !== T.RParen) {
        values.push(parseValue());
        while (peek().t === T.Comma) {
          p++;
          values.push(parseValue());
        }
      }
      if (peek().t !== T.RParen) throw new ConditionSyntaxError(`expected ',' or ')' in the value list, found '${peek().text || 'end of text'}'`, peek().offset);
      p++;
    } else values.push(parseValue());
    return { kind: 'cmp', field, op, negate, values, list, offset: tk.offset };
  }

  const e = parseOr();
  if (peek().t !== T.End) throw new ConditionSyntaxError(`unexpected '${peek().text}' after a complete condition (missing 'and' / 'or'?)`, peek().offset);
  return e;
}
