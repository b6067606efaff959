// Condition compilation: expand macros and lists, type-check every field and
// value, and turn the tree into nested closures. Also renders the expanded
// tree canonically (for golden tests and `rules check --explain`) and derives
// which event classes a condition can match (the rule index).
import type { ExprNode, ValueNode } from './expr.js';
import { RuleErrorCodes } from '../errors.js';
import type { EvalContext } from './context.js';
import { fieldDef as fieldDef_, type FieldDef } from './fields.js';
import { cidrContains as cidrContains_, parseCidr as parseCidr_, parseIp as parseIp_, type Cidr } from './cidr.js';
// Local bindings: per-file transpilers (tsx, ts-node) turn imported bindings into
// getter calls on every use, which costs more than the lexer itself.
const fieldDef = fieldDef_;
const cidrContains = cidrContains_;
const parseCidr = parseCidr_;
const parseIp = parseIp_;

/** A compiled condition. */
export type Predicate = (c: EvalContext) => boolean;

/** @internal A compile error at an offset of the condition text being compiled. */
export class CompileError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly offset: number,
  ) {
    super(message);
  }
}

/** @internal Lists and (already validated) macros visible to conditions. */
export interface CompileEnv {
  readonly lists: ReadonlyMap<string, readonly string[]>;
  readonly macros: ReadonlyMap<string, ExprNode>;
}

/** Fully expanded node: no `ref`, values resolved. */
type Expanded =
  | { kind: 'and' | 'or'; items: Expanded[] }
  | { kind: 'not'; item: Expanded }
  | { kind: 'cmp'; field: string; def: FieldDef; op: string; negate: boolean; values: string[]; valueOffsets: number[]; list: boolean; offset: number }
  | { kind: 'exists'; field: string; def: FieldDef }
  | { kind: 'bool'; field: string; def: FieldDef }
  | { kind: 'const'; value: boolean };

/** @internal Expands macro references and list names. `offsetBase` maps errors inside macros to the reference. */
export function expand(node: ExprNode, env: CompileEnv, stack: string[] = [], refOffset?: number): Expanded {
  return expandNode(node, env, stack, refOffset);
}

function expandNode(node: ExprNode, env: CompileEnv, stack: string[], refOffset: number | undefined): Expanded {
  const at = (o: number): number => refOffset ?? o;
  switch (node.kind) {
    case 'and':
    case 'or':
      return { kind: node.kind, items: node.items.map((n) => expand(n, env, stack, refOffset)) };
    case 'not':
      return { kind: 'not', item: expand(node.item, env, stack, refOffset) };
    case 'const':
      return { kind: 'const', value: node.value };
    case 'ref': {
      const m = env.macros.get(node.name);
      if (m !== undefined) {
        if (stack.includes(node.name)) throw new CompileError(RuleErrorCodes.MACRO_CYCLE, `macro cycle: ${[...stack, node.name].join(' -> ')}`, at(node.offset));
        return expand(m, env, [...stack, node.name], at(node.offset));
      }
      const def = fieldDef(node.name);
      if (def === undefined) throw new CompileError(RuleErrorCodes.UNKNOWN_NAME, `'${node.name}' is neither a macro nor a field`, at(node.offset));
      if (def.kind !== 'boolean') throw new CompileError(RuleErrorCodes.TYPE, `field '${node.name}' is not boolean; compare it with an operator`, at(node.offset));
      return { kind: 'bool', field: node.name, def };
    }
    case 'exists': {
      const def = fieldDef(node.field);
      if (def === undefined) throw new CompileError(RuleErrorCodes.UNKNOWN_FIELD, `unknown field '${node.field}'`, at(node.offset));
      return { kind: 'exists', field: node.field, def };
    }
    case 'cmp': {
      const def = fieldDef(node.field);
      if (def === undefined) throw new CompileError(RuleErrorCodes.UNKNOWN_FIELD, `unknown field '${node.field}'`, at(node.offset));
      const values: string[] = [];
      const valueOffsets: number[] = [];
      for (const v of node.values) expandValue(v, env, values, valueOffsets, [], refOffset);
      return { kind: 'cmp', field: node.field, def, op: node.op, negate: node.negate, values, valueOffsets, list: node.list || values.length !== node.values.length, offset: at(node.offset) };
    }
    default:
      throw new CompileError(RuleErrorCodes.SYNTAX, 'unknown condition node', 0);
  }
}

/** Appends the value (or the items of the list it names) to `out`, with where each was written to `offs`. */
function expandValue(v: ValueNode, env: CompileEnv, out: string[], offs: number[], seen: string[], refOffset: number | undefined): void {
  const list = v.bare ? env.lists.get(v.text) : undefined;
  if (list === undefined) {
    out.push(v.text);
    offs.push(refOffset ?? v.offset);
    return;
  }
  if (seen.includes(v.text)) throw new CompileError(RuleErrorCodes.LIST_CYCLE, `list cycle: ${[...seen, v.text].join(' -> ')}`, refOffset ?? v.offset);
  for (const item of list) expandValue({ text: item, bare: true, offset: v.offset }, env, out, offs, [...seen, v.text], refOffset);
}

// ---- closures ------------------------------------------------------------------

/** Whether `v` is ASCII with no upper-case letter. */
function isAsciiLower(v: string): boolean {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c >= 128 || (c >= 0x41 && c <= 0x5a)) return false;
  }
  return true;
}

/**
 * `s.toLowerCase().includes(v)` for an ASCII lower-case `v`, without
 * building the lower-cased copy of `s` (one per statement for a rule like
 * `sql icontains "..."`, most of what such a rule cost). A text with a
 * non-ASCII character takes the copying path: a few of those lower-case to
 * ASCII (U+0130, U+212A), and only toLowerCase knows them all.
 */
function includesFolded(s: string, v: string): boolean {
  const n = s.length;
  const m = v.length;
  if (m === 0) return true;
  const first = v.charCodeAt(0);
  for (let i = 0; i < n; i++) {
    let c = s.charCodeAt(i);
    if (c >= 128) return s.toLowerCase().includes(v);
    if (c >= 0x41 && c <= 0x5a) c += 0x20;
    if (c !== first || i + m > n) continue;
    let k = 1;
    for (; k < m; k++) {
      let d = s.charCodeAt(i + k);
      if (d >= 128) return s.toLowerCase().includes(v);
      if (d >= 0x41 && d <= 0x5a) d += 0x20;
      if (d !== v.charCodeAt(k)) break;
    }
    if (k === m) return true;
  }
  return false;
}

function num(s: string, field: string, offset: number): number {
  const n = Number(s);
  if (s.trim().length === 0 || Number.isNaN(n)) throw new CompileError(RuleErrorCodes.BAD_VALUE, `field '${field}' is a number; '${s}' is not`, offset);
  return n;
}

function parseClock(s: string, offset: number): number {
  const m = /^(\d{1,2}):(\d{2})$/.exec(s.trim());
  if (m === null || Number(m[1]) > 24 || Number(m[2]) > 59) throw new CompileError(RuleErrorCodes.BAD_VALUE, `'${s}' is not a time of day (HH:MM)`, offset);
  return Number(m[1]) * 60 + Number(m[2]);
}

function strOf(v: unknown): string | undefined {
  return typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : undefined;
}

/** Applies a string test to a string field, or to any element of a list field. */
function stringTest(def: FieldDef, test: (s: string) => boolean): Predicate {
  const get = def.get;
  if (def.kind === 'strings') {
    return (c) => {
      const arr = get(c) as string[] | undefined;
      if (arr === undefined) return false;
      for (let i = 0; i < arr.length; i++) if (test(arr[i]!)) return true;
      return false;
    };
  }
  if (def.kind === 'string') {
    return (c) => {
      const v = get(c);
      return typeof v === 'string' && test(v);
    };
  }
  return (c) => {
    const v = strOf(get(c));
    return v !== undefined && test(v);
  };
}

function compileCmp(n: Extract<Expanded, { kind: 'cmp' }>): Predicate {
  const { def, field, values, offset } = n;
  // value errors point at the value (for list items: at the list's name)
  const vo = (i: number): number => n.valueOffsets[i] ?? offset;
  const get = def.get;
  const one = (): string => {
    if (values.length !== 1) throw new CompileError(RuleErrorCodes.BAD_VALUE, `operator '${n.op}' takes one value; use 'in' for lists`, offset);
    return values[0]!;
  };
  switch (n.op) {
    case '=':
    case '!=': {
      const v = one();
      let p: Predicate;
      if (def.kind === 'number') {
        const x = num(v, field, vo(0));
        p = (c) => get(c) === x;
      } else if (def.kind === 'boolean') {
        if (v !== 'true' && v !== 'false') throw new CompileError(RuleErrorCodes.BAD_VALUE, `field '${field}' is boolean; use true or false`, vo(0));
        const b = v === 'true';
        p = (c) => (get(c) ?? false) === b;
      } else p = stringTest(def, (s) => s === v);
      return n.op === '!=' ? (c) => !p(c) : p;
    }
    case '<':
    case '<=':
    case '>':
    case '>=': {
      if (def.kind !== 'number' && def.kind !== 'scalar') throw new CompileError(RuleErrorCodes.TYPE, `operator '${n.op}' needs a numeric field; '${field}' is ${def.kind}`, offset);
      const x = num(one(), field, vo(0));
      const toN = (c: EvalContext): number => {
        const v = get(c);
        return typeof v === 'number' ? v : typeof v === 'string' && v.length > 0 ? Number(v) : NaN;
      };
      if (n.op === '<') return (c) => toN(c) < x;
      if (n.op === '<=') return (c) => toN(c) <= x;
      if (n.op === '>') return (c) => toN(c) > x;
      return (c) => toN(c) >= x;
    }
    case 'in':
    case 'iin': {
      if (def.kind === 'number') {
        const set = new Set(values.map((v, i) => num(v, field, vo(i))));
        return (c) => set.has(get(c) as number);
      }
      if (def.kind === 'boolean') throw new CompileError(RuleErrorCodes.TYPE, `field '${field}' is boolean; 'in' does not apply`, offset);
      if (n.op === 'in') {
        const set = new Set(values);
        return stringTest(def, (s) => set.has(s));
      }
      const set = new Set(values.map((v) => v.toLowerCase()));
      return stringTest(def, (s) => set.has(s.toLowerCase()));
    }
    case 'iequals': {
      const v = one().toLowerCase();
      return stringTest(def, (s) => s.toLowerCase() === v);
    }
    case 'contains':
    case 'startswith':
    case 'endswith':
    case 'icontains':
    case 'istartswith':
    case 'iendswith': {
      if (def.kind === 'number' || def.kind === 'boolean') throw new CompileError(RuleErrorCodes.TYPE, `operator '${n.op}' needs a text field; '${field}' is ${def.kind}`, offset);
      const ci = n.op.startsWith('i');
      const vs = ci ? values.map((v) => v.toLowerCase()) : values;
      const base = ci ? n.op.slice(1) : n.op;
      const f = base === 'contains' ? (s: string, v: string) => s.includes(v) : base === 'startswith' ? (s: string, v: string) => s.startsWith(v) : (s: string, v: string) => s.endsWith(v);
      if (vs.length === 1) {
        const v = vs[0]!;
        if (ci && base === 'contains' && isAsciiLower(v)) return stringTest(def, (s) => includesFolded(s, v));
        return stringTest(def, ci ? (s) => f(s.toLowerCase(), v) : (s) => f(s, v));
      }
      return stringTest(def, (s) => {
        const x = ci ? s.toLowerCase() : s;
        for (const v of vs) if (f(x, v)) return true;
        return false;
      });
    }
    case 'matches':
    case 'imatches': {
      if (def.kind === 'number' || def.kind === 'boolean') throw new CompileError(RuleErrorCodes.TYPE, `operator '${n.op}' needs a text field; '${field}' is ${def.kind}`, offset);
      const res = values.map((v, i) => {
        try {
          return new RegExp(v, n.op === 'imatches' ? 'i' : '');
        } catch (err) {
          throw new CompileError(RuleErrorCodes.BAD_REGEX, `bad regular expression '${v}': ${(err as Error).message}`, vo(i));
        }
      });
      if (res.length === 1) {
        const re = res[0]!;
        return stringTest(def, (s) => re.test(s));
      }
      return stringTest(def, (s) => res.some((re) => re.test(s)));
    }
    case 'in_cidr': {
      if (def.kind !== 'string') throw new CompileError(RuleErrorCodes.TYPE, `operator 'in_cidr' needs an address field; '${field}' is ${def.kind}`, offset);
      const blocks: Cidr[] = values.map((v, i) => {
        const c = parseCidr(v);
        if (c === undefined) throw new CompileError(RuleErrorCodes.BAD_VALUE, `'${v}' is not an address or CIDR block`, vo(i));
        return c;
      });
      let lastText = '';
      let lastIp: Uint32Array | undefined;
      return (c) => {
        const v = get(c);
        if (typeof v !== 'string') return false;
        if (v !== lastText) {
          lastText = v;
          lastIp = parseIp(v);
        }
        if (lastIp === undefined) return false;
        for (const b of blocks) if (cidrContains(b, lastIp)) return true;
        return false;
      };
    }
    case 'within': {
      if (field !== 'time') throw new CompileError(RuleErrorCodes.TYPE, `operator 'within' applies to the field 'time' only`, offset);
      const ranges = values.map((v, i) => {
        const dash = v.indexOf('-');
        if (dash < 0) throw new CompileError(RuleErrorCodes.BAD_VALUE, `'${v}' is not a time range (HH:MM-HH:MM)`, vo(i));
        return [parseClock(v.slice(0, dash), vo(i)), parseClock(v.slice(dash + 1), vo(i))] as const;
      });
      return (c) => {
        const m = c.getMinuteOfDay();
        for (const [a, b] of ranges) if (a <= b ? m >= a && m < b : m >= a || m < b) return true;
        return false;
      };
    }
    default:
      throw new CompileError(RuleErrorCodes.SYNTAX, `unknown operator '${n.op}'`, offset);
  }
}

/** @internal Compiles an expanded condition to a closure. */
export function compileExpanded(n: Expanded): Predicate {
  switch (n.kind) {
    case 'const': {
      const v = n.value;
      return () => v;
    }
    case 'bool': {
      const get = n.def.get;
      return (c) => get(c) === true;
    }
    case 'exists': {
      const get = n.def.get;
      return (c) => {
        const v = get(c);
        return v !== undefined && v !== null && v !== '' && !(Array.isArray(v) && v.length === 0);
      };
    }
    case 'not': {
      const p = compileExpanded(n.item);
      return (c) => !p(c);
    }
    case 'and': {
      const ps = n.items.map(compileExpanded);
      if (ps.length === 2) {
        const [a, b] = ps as [Predicate, Predicate];
        return (c) => a(c) && b(c);
      }
      return (c) => {
        for (let i = 0; i < ps.length; i++) if (!ps[i]!(c)) return false;
        return true;
      };
    }
    case 'or': {
      const ps = n.items.map(compileExpanded);
      if (ps.length === 2) {
        const [a, b] = ps as [Predicate, Predicate];
        return (c) => a(c) || b(c);
      }
      return (c) => {
        for (let i = 0; i < ps.length; i++) if (ps[i]!(c)) return true;
        return false;
      };
    }
    case 'cmp': {
      const p = compileCmp(n);
      return n.negate ? (c) => !p(c) : p;
    }
  }
}

/** @internal Canonical text of an expanded condition: `(and (= statementType "delete") (not sql.hasWhere))`. */
export function describeExpanded(n: Expanded): string {
  switch (n.kind) {
    case 'const':
      return String(n.value);
    case 'bool':
      return n.field;
    case 'exists':
      return `(exists ${n.field})`;
    case 'not':
      return `(not ${describeExpanded(n.item)})`;
    case 'and':
    case 'or':
      return `(${n.kind} ${n.items.map(describeExpanded).join(' ')})`;
    case 'cmp': {
      const render = (v: string): string => (n.def.kind === 'number' && v.trim().length > 0 && !Number.isNaN(Number(v)) ? String(Number(v)) : JSON.stringify(v));
      const vals = n.list ? `[${n.values.map(render).join(',')}]` : render(n.values[0] ?? '');
      return `(${n.negate ? 'not-' : ''}${n.op} ${n.field} ${vals})`;
    }
  }
}

// ---- index ----------------------------------------------------------------------

const STATEMENT_TYPES = ['select', 'insert', 'update', 'delete', 'merge', 'ddl', 'dcl', 'tcl', 'other', 'none'];
/** Every index key: record kinds, and statements split by class. */
export const INDEX_KEYS: readonly string[] = ['login', 'logout', 'connection', ...STATEMENT_TYPES.map((t) => `statement:${t}`)];

// The keys as constants, so looking a record's candidates up allocates no string.
const STATEMENT_KEY: Readonly<Record<string, string>> = Object.fromEntries(STATEMENT_TYPES.map((t) => [t, `statement:${t}`]));

/** @internal Index key of an event. */
export function indexKey(kind: string, statementType: string | undefined): string {
  if (kind !== 'statement') return kind;
  return (statementType === undefined ? undefined : STATEMENT_KEY[statementType]) ?? `statement:${statementType ?? 'none'}`;
}

/** @internal The index keys a condition can match, or undefined for all. */
export function indexKeys(n: Expanded): Set<string> | undefined {
  switch (n.kind) {
    case 'and': {
      let acc: Set<string> | undefined;
      for (const it of n.items) {
        const k = indexKeys(it);
        if (k === undefined) continue;
        acc = acc === undefined ? k : new Set([...acc].filter((x) => k.has(x)));
      }
      return acc;
    }
    case 'or': {
      const acc = new Set<string>();
      for (const it of n.items) {
        const k = indexKeys(it);
        if (k === undefined) return undefined;
        for (const x of k) acc.add(x);
      }
      return acc;
    }
    case 'const':
      return n.value ? undefined : new Set();
    case 'cmp': {
      if (n.negate || (n.op !== '=' && n.op !== 'in')) return undefined;
      if (n.field === 'kind') {
        const out = new Set<string>();
        for (const v of n.values) {
          if (v === 'statement') for (const t of STATEMENT_TYPES) out.add(`statement:${t}`);
          else out.add(v);
        }
        return out;
      }
      if (n.field === 'statementType') return new Set(n.values.map((v) => `statement:${v}`));
      return undefined;
    }
    default:
      return undefined;
  }
}

/**
 * @internal The condition as it stands for records of index key `key`:
 * comparisons of `kind` and `statementType` that the key decides become
 * constants and fold away, so a rule filed under `statement:delete` no
 * longer re-checks `kind = statement and statementType = delete` on every
 * record. Returns undefined when nothing was decided.
 */
export function specialize(n: Expanded, key: string): Expanded | undefined {
  const colon = key.indexOf(':');
  const kind = colon < 0 ? key : key.slice(0, colon);
  const type = colon < 0 ? undefined : key.slice(colon + 1);
  let changed = false;
  const walk = (x: Expanded): Expanded => {
    switch (x.kind) {
      case 'cmp': {
        let known: string | undefined;
        if (x.field === 'kind') known = kind;
        else if (x.field === 'statementType' && type !== undefined && type !== 'none') known = type;
        else return x;
        const hit = x.values.includes(known);
        let v: boolean;
        if (x.op === '=' || x.op === 'in') v = hit;
        else if (x.op === '!=') v = !hit;
        else return x;
        changed = true;
        return { kind: 'const', value: x.negate ? !v : v };
      }
      case 'not': {
        const i = walk(x.item);
        return i.kind === 'const' ? { kind: 'const', value: !i.value } : i === x.item ? x : { kind: 'not', item: i };
      }
      case 'and':
      case 'or': {
        const stop = x.kind === 'or'; // the constant that decides the whole
        const items: Expanded[] = [];
        for (const it of x.items) {
          const w = walk(it);
          if (w.kind === 'const') {
            if (w.value === stop) return { kind: 'const', value: stop };
            continue; // the neutral constant drops out
          }
          items.push(w);
        }
        if (items.length === 0) return { kind: 'const', value: !stop };
        return items.length === 1 ? items[0]! : { kind: x.kind, items };
      }
      default:
        return x;
    }
  };
  const out = walk(n);
  return changed ? out : undefined;
}

/** @internal Fields a condition reads (to know whether, e.g., the injection detector is needed). */
export function fieldsOf(n: Expanded, out: Set<string> = new Set()): Set<string> {
  switch (n.kind) {
    case 'and':
    case 'or':
      for (const it of n.items) fieldsOf(it, out);
      break;
    case 'not':
      fieldsOf(n.item, out);
      break;
    case 'cmp':
    case 'exists':
    case 'bool':
      out.add(n.field);
      break;
    default:
      break;
  }
  return out;
}

export type { Expanded };

// ---- shape tests ------------------------------------------------------------------

/**
 * @internal Groups of fields a statement's shape decides, as bits of the
 * `known` mask a {@link ShapeTest} is given: the analysis of the text
 * (`sql.verbs`, `sql.hasWhere`, ...), the record fields the engine filled
 * from that analysis (`statementType`, `verb`, `objects.*`, `fingerprint`),
 * and an injection verdict that read no literal.
 */
export const ShapeFacts = { analysis: 1, enriched: 2, verdict: 4 } as const;

const SHAPE_FIELDS: Readonly<Record<string, number>> = {
  'sql.hasWhere': ShapeFacts.analysis,
  'sql.unfilteredWrite': ShapeFacts.analysis,
  'sql.statementCount': ShapeFacts.analysis,
  'sql.verbs': ShapeFacts.analysis,
  'sql.types': ShapeFacts.analysis,
  statementType: ShapeFacts.enriched,
  verb: ShapeFacts.enriched,
  fingerprint: ShapeFacts.enriched,
  'objects.name': ShapeFacts.enriched,
  'objects.schema': ShapeFacts.enriched,
  'objects.qualified': ShapeFacts.enriched,
  'objects.op': ShapeFacts.enriched,
  'sql.injection': ShapeFacts.verdict,
  'sql.injectionReasons': ShapeFacts.verdict,
  'sql.injectionScore': ShapeFacts.verdict,
};

/** @internal Three-valued result of a {@link ShapeTest}. */
export const FALSE = 0;
/** @internal */
export const TRUE = 1;
/** @internal */
export const UNKNOWN = 2;

/**
 * @internal A condition evaluated on what a statement shape decides:
 * FALSE when no record of the shape can match (whatever its other fields),
 * TRUE when every record of it matches, UNKNOWN otherwise. Fields outside
 * the groups of `known` are unknown.
 */
export type ShapeTest = (c: EvalContext, known: number) => number;

/** @internal The shape test of a condition, or undefined when it reads no field a shape decides. */
export function compileShapeTest(n: Expanded): ShapeTest | undefined {
  let any = false;
  for (const f of fieldsOf(n)) if (SHAPE_FIELDS[f] !== undefined) any = true;
  return any ? shapeTest(n) : undefined;
}

function shapeTest(n: Expanded): ShapeTest {
  switch (n.kind) {
    case 'const': {
      const v = n.value ? TRUE : FALSE;
      return () => v;
    }
    case 'cmp':
    case 'exists':
    case 'bool': {
      const bit = SHAPE_FIELDS[n.field] ?? 0;
      if (bit === 0) return () => UNKNOWN;
      const p = compileExpanded(n);
      return (c, known) => ((known & bit) === 0 ? UNKNOWN : p(c) ? TRUE : FALSE);
    }
    case 'not': {
      const t = shapeTest(n.item);
      return (c, known) => {
        const r = t(c, known);
        return r === UNKNOWN ? UNKNOWN : r === TRUE ? FALSE : TRUE;
      };
    }
    case 'and':
    case 'or': {
      const ts = n.items.map(shapeTest);
      const decisive = n.kind === 'and' ? FALSE : TRUE;
      return (c, known) => {
        let out = n.kind === 'and' ? TRUE : FALSE;
        for (let i = 0; i < ts.length; i++) {
          const r = ts[i]!(c, known);
          if (r === decisive) return decisive;
          if (r === UNKNOWN) out = UNKNOWN;
        }
        return out;
      };
    }
  }
}
