import { ErrorCodes } from '@dbtap/core';
import { RuleErrorCodes } from '../errors.js';
// Stage 1 of rule loading: read one source (YAML, JSON or a plain object),
// check its shape, and keep a way back from any value to its line and column.
import { readFileSync } from 'node:fs';
import { LineCounter, isMap, isScalar, isSeq, parseDocument, type Document, type Node } from 'yaml';
import { ConditionSyntaxError, parseCondition as parseCondition_ } from './expr.js';
import { fieldDef as fieldDef_ } from './fields.js';
import type { Diagnostic, DiagnosticSeverity, RuleFileContent } from './types.js';
// Local bindings: per-file transpilers (tsx, ts-node) turn imported bindings into
// getter calls on every use, which costs more than the lexer itself.
const parseCondition = parseCondition_;
const fieldDef = fieldDef_;

/** Path of a value inside a rule file, e.g. `['rules', 3, 'condition']`. */
export type RulePath = readonly (string | number)[];

/** One loaded rule source, ready to merge and compile. */
export interface RuleFile {
  /** File path or source name (used in diagnostics). */
  readonly name: string;
  /** The file's data. */
  readonly content: RuleFileContent;
  /**
   * Line and column (1-based) of the value at `path`, and of character
   * `offset` inside it when it is a string; `{ line: 0, column: 0 }` for
   * plain-object sources.
   */
  locate(path: RulePath, offset?: number): { line: number; column: number };
}

/** @internal Diagnostic builder bound to one file. */
export function diag(file: RuleFile, path: RulePath, code: string, message: string, severity: DiagnosticSeverity = 'error', offset?: number): Diagnostic {
  const { line, column } = file.locate(path, offset);
  return { code, severity, message, file: file.name, line, column };
}

/** Parses a window length: seconds as a number, or `500ms`, `30s`, `5m`, `2h`, `1d`. Returns microseconds or undefined. */
export function parseWindow(w: unknown): number | undefined {
  if (typeof w === 'number') return w > 0 && Number.isFinite(w) ? Math.round(w * 1_000_000) : undefined;
  if (typeof w !== 'string') return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(w);
  if (m === null) return undefined;
  const v = Number(m[1]);
  const unit = m[2] ?? 's';
  const us = unit === 'ms' ? 1_000 : unit === 's' ? 1_000_000 : unit === 'm' ? 60_000_000 : unit === 'h' ? 3_600_000_000 : 86_400_000_000;
  const r = Math.round(v * us);
  return r > 0 ? r : undefined;
}

const TOP_KEYS = new Set(['lists', 'macros', 'rules', 'groups']);
const RULE_KEYS = new Set(['id', 'name', 'description', 'risk', 'condition', 'action', 'enabled', 'tags', 'detector', 'override', 'append']);
const DETECTOR_KEYS = new Set(['window', 'threshold', 'groupBy', 'distinct', 'sum']);
const RISKS = new Set(['high', 'medium', 'low', 'info']);
const ACTIONS = new Set(['alert', 'log', 'ignore']);

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Diagnostics of one file, plus the entries (`section\u0000name`) that had errors. */
type Sink = Diagnostic[] & { bad: Set<string> };

function put(out: Sink, file: RuleFile, path: RulePath, code: string, message: string, severity: DiagnosticSeverity = 'error', offset?: number): void {
  out.push(diag(file, path, code, message, severity, offset));
  if (severity === 'error') out.bad.add(path.length === 0 ? '' : path.length === 1 ? String(path[0]) : `${path[0]}\u0000${path[1]}`);
}

/** Checks the shape of a file's data; returns the diagnostics (errors make the file unusable). */
function validate(file: RuleFile): Sink {
  const out = Object.assign([] as Diagnostic[], { bad: new Set<string>() });
  const c = file.content as unknown;
  if (!isObj(c)) {
    put(out, file, [], RuleErrorCodes.SCHEMA, 'a rule file must be a mapping with lists, macros, rules and groups');
    return out;
  }
  for (const k of Object.keys(c)) if (!TOP_KEYS.has(k)) put(out, file, [k], 'DBTAP_W_RULE_UNKNOWN_KEY', `unknown top-level key '${k}' (expected lists, macros, rules, groups)`, 'warning');
  if (c.lists !== undefined) {
    if (!isObj(c.lists)) put(out, file, ['lists'], RuleErrorCodes.SCHEMA, "'lists' must map names to lists of values");
    else
      for (const [name, v] of Object.entries(c.lists)) {
        const items = Array.isArray(v) ? v : isObj(v) ? v.items : undefined;
        if (!Array.isArray(items)) put(out, file, ['lists', name], RuleErrorCodes.SCHEMA, `list '${name}' must be a sequence of values or { items: [...], append: true }`);
        else
          items.forEach((it, i) => {
            if (typeof it !== 'string' && typeof it !== 'number') put(out, file, Array.isArray(v) ? ['lists', name, i] : ['lists', name, 'items', i], RuleErrorCodes.SCHEMA, `list '${name}' item ${i + 1} must be a string or number`);
          });
        if (isObj(v) && v.append !== undefined && typeof v.append !== 'boolean') put(out, file, ['lists', name, 'append'], RuleErrorCodes.SCHEMA, "'append' must be true or false");
      }
  }
  if (c.macros !== undefined) {
    if (!isObj(c.macros)) put(out, file, ['macros'], RuleErrorCodes.SCHEMA, "'macros' must map names to conditions");
    else
      for (const [name, v] of Object.entries(c.macros)) {
        if (fieldDef(name) !== undefined) put(out, file, ['macros', name], RuleErrorCodes.SCHEMA, `macro '${name}' has the name of a field`);
        const cond = typeof v === 'string' ? v : isObj(v) ? v.condition : undefined;
        const path = typeof v === 'string' ? ['macros', name] : ['macros', name, 'condition'];
        if (typeof cond !== 'string') put(out, file, ['macros', name], RuleErrorCodes.SCHEMA, `macro '${name}' must be a condition string or { condition, append: true }`);
        else checkSyntax(file, path, cond, out);
      }
  }
  if (c.rules !== undefined) {
    if (!Array.isArray(c.rules)) put(out, file, ['rules'], RuleErrorCodes.SCHEMA, "'rules' must be a sequence of rules");
    else {
      const seen = new Map<string, number>();
      c.rules.forEach((r, i) => validateRule(file, r, i, seen, out));
    }
  }
  if (c.groups !== undefined) {
    if (!isObj(c.groups)) put(out, file, ['groups'], RuleErrorCodes.SCHEMA, "'groups' must map group names to lists of rule ids");
    else
      for (const [name, v] of Object.entries(c.groups)) {
        if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) put(out, file, ['groups', name], RuleErrorCodes.SCHEMA, `group '${name}' must be a sequence of rule ids, 'prefix*' patterns or 'tag:<tag>'`);
      }
  }
  return out;
}

function checkSyntax(file: RuleFile, path: RulePath, cond: string, out: Sink): void {
  try {
    parseCondition(cond);
  } catch (err) {
    if (err instanceof ConditionSyntaxError) put(out, file, path, RuleErrorCodes.SYNTAX, err.message, 'error', err.offset);
    else throw err;
  }
}

function validateRule(file: RuleFile, r: unknown, i: number, seen: Map<string, number>, out: Sink): void {
  const at = (k?: string): RulePath => (k === undefined ? ['rules', i] : ['rules', i, k]);
  if (!isObj(r)) {
    put(out, file, at(), RuleErrorCodes.SCHEMA, `rule ${i + 1} must be a mapping`);
    return;
  }
  for (const k of Object.keys(r)) if (!RULE_KEYS.has(k)) put(out, file, at(k), 'DBTAP_W_RULE_UNKNOWN_KEY', `unknown rule key '${k}'`, 'warning');
  if (typeof r.id !== 'string' || r.id.trim().length === 0) {
    put(out, file, r.id === undefined ? at() : at('id'), RuleErrorCodes.SCHEMA, `rule ${i + 1} needs an 'id' (a non-empty string)`);
    return;
  }
  if (seen.has(r.id)) put(out, file, at('id'), RuleErrorCodes.DUPLICATE, `rule id '${r.id}' is defined twice in this file (first as rule ${seen.get(r.id)! + 1})`);
  else seen.set(r.id, i);
  const amend = r.override === true || r.append === true;
  if (r.override !== undefined && typeof r.override !== 'boolean') put(out, file, at('override'), RuleErrorCodes.SCHEMA, "'override' must be true or false");
  if (r.append !== undefined && typeof r.append !== 'boolean') put(out, file, at('append'), RuleErrorCodes.SCHEMA, "'append' must be true or false");
  if (r.override === true && r.append === true) put(out, file, at('append'), RuleErrorCodes.SCHEMA, "a rule entry cannot both 'override' and 'append'");
  if (r.append === true && typeof r.condition !== 'string') put(out, file, at(), RuleErrorCodes.SCHEMA, `rule '${r.id}': 'append' needs a condition to append`);
  if (r.risk === undefined ? !amend : typeof r.risk !== 'string' || !RISKS.has(r.risk)) put(out, file, r.risk === undefined ? at() : at('risk'), RuleErrorCodes.SCHEMA, `rule '${r.id}': 'risk' must be one of high, medium, low, info`);
  if (r.condition === undefined ? !amend : typeof r.condition !== 'string') put(out, file, r.condition === undefined ? at() : at('condition'), RuleErrorCodes.SCHEMA, `rule '${r.id}': 'condition' must be a condition string`);
  else if (typeof r.condition === 'string') checkSyntax(file, at('condition'), r.condition, out);
  if (r.action !== undefined && (typeof r.action !== 'string' || !ACTIONS.has(r.action))) put(out, file, at('action'), RuleErrorCodes.SCHEMA, `rule '${r.id}': 'action' must be one of alert, log, ignore`);
  if (r.enabled !== undefined && typeof r.enabled !== 'boolean') put(out, file, at('enabled'), RuleErrorCodes.SCHEMA, `rule '${r.id}': 'enabled' must be true or false`);
  for (const k of ['name', 'description'] as const) if (r[k] !== undefined && typeof r[k] !== 'string') put(out, file, at(k), RuleErrorCodes.SCHEMA, `rule '${r.id}': '${k}' must be a string`);
  if (r.tags !== undefined && (!Array.isArray(r.tags) || r.tags.some((t) => typeof t !== 'string'))) put(out, file, at('tags'), RuleErrorCodes.SCHEMA, `rule '${r.id}': 'tags' must be a sequence of strings`);
  if (r.detector !== undefined) {
    const d = r.detector;
    const dp = (k?: string): RulePath => (k === undefined ? at('detector') : ['rules', i, 'detector', k]);
    if (!isObj(d)) put(out, file, dp(), RuleErrorCodes.SCHEMA, `rule '${r.id}': 'detector' must be a mapping`);
    else {
      for (const k of Object.keys(d)) if (!DETECTOR_KEYS.has(k)) put(out, file, dp(k), 'DBTAP_W_RULE_UNKNOWN_KEY', `unknown detector key '${k}'`, 'warning');
      if (parseWindow(d.window) === undefined) put(out, file, d.window === undefined ? dp() : dp('window'), RuleErrorCodes.SCHEMA, `rule '${r.id}': detector 'window' must be a duration such as 60s, 5m, 1h`);
      if (typeof d.threshold !== 'number' || !(d.threshold > 0)) put(out, file, d.threshold === undefined ? dp() : dp('threshold'), RuleErrorCodes.SCHEMA, `rule '${r.id}': detector 'threshold' must be a positive number`);
      if (d.groupBy !== undefined) {
        if (!Array.isArray(d.groupBy)) put(out, file, dp('groupBy'), RuleErrorCodes.SCHEMA, `rule '${r.id}': 'groupBy' must be a sequence of field names`);
        else
          d.groupBy.forEach((g, gi) => {
            if (typeof g !== 'string' || fieldDef(g) === undefined) put(out, file, ['rules', i, 'detector', 'groupBy', gi], RuleErrorCodes.UNKNOWN_FIELD, `rule '${r.id}': unknown groupBy field '${String(g)}'`);
          });
      }
      if (d.distinct !== undefined && d.sum !== undefined) put(out, file, dp('sum'), RuleErrorCodes.SCHEMA, `rule '${r.id}': a detector counts 'distinct' values or a 'sum', not both`);
      if (d.distinct !== undefined && (typeof d.distinct !== 'string' || fieldDef(d.distinct) === undefined)) put(out, file, dp('distinct'), RuleErrorCodes.UNKNOWN_FIELD, `rule '${r.id}': unknown distinct field '${String(d.distinct)}'`);
      if (d.sum !== undefined) {
        const f = typeof d.sum === 'string' ? fieldDef(d.sum) : undefined;
        if (f === undefined) put(out, file, dp('sum'), RuleErrorCodes.UNKNOWN_FIELD, `rule '${r.id}': unknown sum field '${String(d.sum)}'`);
        else if (f.kind !== 'number') put(out, file, dp('sum'), RuleErrorCodes.TYPE, `rule '${r.id}': sum field '${String(d.sum)}' is not numeric`);
      }
    }
  }
}

// ---- sources --------------------------------------------------------------------

function yamlLocator(doc: Document, lc: LineCounter, text: string): RuleFile['locate'] {
  return (path, offset) => {
    let node: unknown;
    for (let len = path.length; len >= 0; len--) {
      node = len === 0 ? doc.contents : doc.getIn(path.slice(0, len), true);
      if (node !== undefined && node !== null && typeof node === 'object' && 'range' in (node as object)) break;
      node = undefined;
    }
    const n = node as Node | undefined;
    if (n === undefined || n.range === undefined || n.range === null) return { line: 1, column: 1 };
    let pos = n.range[0];
    if (offset !== undefined && isScalar(n)) {
      const t = n.type;
      if (t === 'PLAIN') pos += offset;
      else if (t === 'QUOTE_DOUBLE' || t === 'QUOTE_SINGLE') pos += 1 + offset;
      else if (t === 'BLOCK_LITERAL' || t === 'BLOCK_FOLDED') {
        // header line, then the value's lines at a common indent
        const value = String(n.value);
        const before = value.slice(0, offset);
        const lineIdx = before.split('\n').length - 1;
        const col = offset - (before.lastIndexOf('\n') + 1);
        const header = lc.linePos(n.range[0]);
        const firstContent = lc.lineStarts[header.line] ?? n.range[0];
        let indent = 0;
        while (text.charCodeAt(firstContent + indent) === 32) indent++;
        return { line: header.line + 1 + lineIdx, column: indent + col + 1 };
      }
    }
    const p = lc.linePos(pos);
    return { line: p.line, column: p.col };
  };
}

/** Result of reading one source. */
export interface ReadResult {
  /** The file, when it could be read and has no errors. */
  readonly file?: RuleFile;
  /**
   * When the file has errors: its entries without errors, compiled only to
   * find further errors (it never loads).
   */
  readonly partial?: RuleFile;
  /** Problems found (errors and warnings). */
  readonly diagnostics: Diagnostic[];
}

/** The entries of a file's data that had no read-stage errors; rules keep their positions (holes for the bad ones). */
function partialContent(c: unknown, bad: ReadonlySet<string>): RuleFileContent | undefined {
  if (!isObj(c) || bad.has('')) return undefined;
  const out: Record<string, unknown> = {};
  for (const sec of ['lists', 'macros', 'groups']) {
    const v = c[sec];
    if (v === undefined || bad.has(sec) || !isObj(v)) continue;
    out[sec] = Object.fromEntries(Object.entries(v).filter(([k]) => !bad.has(`${sec}\u0000${k}`)));
  }
  if (Array.isArray(c.rules) && !bad.has('rules')) {
    const rules: unknown[] = c.rules.slice();
    for (let i = 0; i < rules.length; i++) if (bad.has(`rules\u0000${i}`)) delete rules[i];
    out.rules = rules;
  }
  return out as RuleFileContent;
}

function result(file: RuleFile, sink: Sink, diagnostics: Diagnostic[]): ReadResult {
  if (!diagnostics.some((d) => d.severity === 'error')) return { file, diagnostics };
  const content = partialContent(file.content, sink.bad);
  return content === undefined ? { diagnostics } : { partial: { name: file.name, content, locate: file.locate }, diagnostics };
}

/** @internal Reads one YAML or JSON text into a {@link RuleFile} (stage 1). */
export function readRuleText(text: string, name: string): ReadResult {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const diagnostics: Diagnostic[] = [];
  for (const e of doc.errors) {
    const p = lc.linePos(e.pos[0]);
    diagnostics.push({ code: RuleErrorCodes.YAML, severity: 'error', message: e.message.split('\n')[0]!, file: name, line: p.line, column: p.col });
  }
  if (diagnostics.length > 0) return { diagnostics };
  const contents = doc.contents;
  const data = contents === null ? {} : (doc.toJS({ maxAliasCount: 100 }) as RuleFileContent);
  if (contents !== null && !isMap(contents) && !isSeq(contents) && !isScalar(contents)) {
    diagnostics.push({ code: RuleErrorCodes.SCHEMA, severity: 'error', message: 'a rule file must be a mapping', file: name, line: 1, column: 1 });
    return { diagnostics };
  }
  const file: RuleFile = { name, content: data ?? {}, locate: yamlLocator(doc, lc, text) };
  const sink = validate(file);
  diagnostics.push(...sink);
  return result(file, sink, diagnostics);
}

/** @internal Wraps a plain object as a {@link RuleFile} (no positions). */
export function readRuleObject(content: RuleFileContent, name: string): ReadResult {
  const file: RuleFile = { name, content, locate: () => ({ line: 0, column: 0 }) };
  const sink = validate(file);
  return result(file, sink, [...sink]);
}

/** @internal Reads a rule file from disk. */
export function readRuleFile(path: string): ReadResult {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    return { diagnostics: [{ code: ErrorCodes.IO, severity: 'error', message: `cannot read rule file: ${(err as Error).message}`, file: path, line: 0, column: 0 }] };
  }
  return readRuleText(text, path);
}
