// Stages 2-4 of rule loading (falco's rule_loader_compiler in spirit):
// collect lists, macros and rules across files with append/override, expand
// macros and lists, compile each condition to a closure, and index rules by
// the event classes they can match. A file with any error is left out as a
// whole: a bad rule file never half-loads.
import { DbtapError } from '@dbtap/core';
import { RuleErrorCodes } from '../errors.js';
import { ConditionSyntaxError, parseCondition as parseCondition_, type ExprNode } from './expr.js';
import { CompileError, compileExpanded as compileExpanded_, compileShapeTest as compileShapeTest_, type ShapeTest, describeExpanded as describeExpanded_, expand as expand_, fieldsOf as fieldsOf_, indexKeys as indexKeys_, specialize as specialize_, type CompileEnv, type Expanded, type Predicate } from './compile.js';
import { diag as diag_, parseWindow as parseWindow_, readRuleFile as readRuleFile_, readRuleObject as readRuleObject_, readRuleText as readRuleText_, type ReadResult, type RuleFile, type RulePath } from './loader.js';
import type { EvalContext } from './context.js';
import type { Diagnostic, RuleAction, RuleFileContent, RuleRisk, RuleSpec } from './types.js';
// Local bindings: per-file transpilers (tsx, ts-node) turn imported bindings into
// getter calls on every use, which costs more than the lexer itself.
const parseCondition = parseCondition_;
const compileExpanded = compileExpanded_;
const compileShapeTest = compileShapeTest_;
const describeExpanded = describeExpanded_;
const expand = expand_;
const fieldsOf = fieldsOf_;
const indexKeys = indexKeys_;
const specialize = specialize_;
const diag = diag_;
const parseWindow = parseWindow_;
const readRuleFile = readRuleFile_;
const readRuleObject = readRuleObject_;
const readRuleText = readRuleText_;

/** A detector after normalisation. */
export interface CompiledDetector {
  /** Window length in microseconds. */
  readonly windowUs: number;
  /** Threshold. */
  readonly threshold: number;
  /** Group-by fields. */
  readonly groupBy: readonly string[];
  /** Field counted distinctly, if any. */
  readonly distinct?: string;
  /** Field summed, if any. */
  readonly sum?: string;
}

/** A rule after compilation. */
export interface CompiledRule {
  /** Rule id. */
  readonly id: string;
  /** Name (the id when none was given). */
  readonly name: string;
  /** Description. */
  readonly description: string;
  /** Risk assigned on match. */
  readonly risk: RuleRisk;
  /** Action on match. */
  readonly action: RuleAction;
  /** Evaluated or not. */
  readonly enabled: boolean;
  /** Tags. */
  readonly tags: readonly string[];
  /** Detector, for stateful rules. */
  readonly detector?: CompiledDetector;
  /** Effective condition text (appended parts joined with `and`). */
  readonly condition: string;
  /** Canonical form of the expanded condition (macros and lists resolved). */
  readonly compiled: string;
  /** Index keys (`login`, `statement:delete`, ...) the rule can match; undefined = every event. */
  readonly indexKeys: readonly string[] | undefined;
  /** Fields the condition reads. */
  readonly fields: readonly string[];
  /** Where the rule was (last) defined. */
  readonly source: { readonly file: string; readonly line: number; readonly column: number };
  /** @internal The compiled condition. */
  readonly test: Predicate;
  /** @internal The condition compiled for the records of one index key (see `specialize`); `false` when it cannot match them. */
  readonly testFor: (key: string) => Predicate | false;
  /** @internal The condition for the records of one index key as a statement shape decides it (undefined when a shape decides none of it). */
  readonly shapeTestFor: (key: string) => ((c: EvalContext, known: number) => number) | undefined;
}

/** Compiled rules, lists and groups; evaluate with a `RuleEngine`. */
export class RuleSet {
  /** All rules in definition order (disabled ones included). */
  readonly rules: readonly CompiledRule[];
  /** Groups: name to the ids of their rules. */
  readonly groups: ReadonlyMap<string, readonly string[]>;
  /** Lists after merging. */
  readonly lists: ReadonlyMap<string, readonly string[]>;
  /** Warnings from loading (errors never make it into a rule set). */
  readonly warnings: readonly Diagnostic[];
  private readonly byId: Map<string, CompiledRule>;

  /** @internal */
  constructor(rules: CompiledRule[], groups: Map<string, string[]>, lists: Map<string, string[]>, warnings: Diagnostic[]) {
    this.rules = rules;
    this.groups = groups;
    this.lists = lists;
    this.warnings = warnings;
    this.byId = new Map(rules.map((r) => [r.id, r]));
  }

  /** A rule by id. */
  rule(id: string): CompiledRule | undefined {
    return this.byId.get(id);
  }

  /** Enabled rules of a group (all enabled rules when `group` is undefined). */
  select(group?: string): CompiledRule[] {
    if (group === undefined) return this.rules.filter((r) => r.enabled);
    const ids = this.groups.get(group);
    if (ids === undefined) return [];
    const out: CompiledRule[] = [];
    for (const id of ids) {
      const r = this.byId.get(id);
      if (r !== undefined && r.enabled) out.push(r);
    }
    return out;
  }
}

/** Result of loading rule sources. */
export interface LoadResult {
  /** True when no source had an error. */
  readonly ok: boolean;
  /** Every error and warning, with file:line:column. */
  readonly diagnostics: readonly Diagnostic[];
  /** Sources that loaded cleanly (in order); pass them to {@link compileRules} with others. */
  readonly files: readonly RuleFile[];
  /** The compiled rule set of the clean sources. */
  readonly ruleSet: RuleSet;
}

interface MergedRule {
  spec: { -readonly [K in keyof RuleSpec]: RuleSpec[K] };
  file: RuleFile;
  index: number;
  parts: { text: string; file: RuleFile; path: RulePath }[];
}

function sortKey(d: Diagnostic): string {
  return `${d.file}\u0000${String(d.line).padStart(8, '0')}\u0000${String(d.column).padStart(6, '0')}`;
}

/** @internal One compile pass over files; reports which files had errors. */
function compilePass(files: readonly RuleFile[]): { ruleSet: RuleSet; diagnostics: Diagnostic[]; bad: Set<RuleFile> } {
  const diagnostics: Diagnostic[] = [];
  const bad = new Set<RuleFile>();
  const err = (d: Diagnostic, f: RuleFile): void => {
    diagnostics.push(d);
    if (d.severity === 'error') bad.add(f);
  };

  // ---- collect lists ----
  const lists = new Map<string, string[]>();
  for (const f of files) {
    for (const [name, v] of Object.entries(f.content.lists ?? {})) {
      const items = (Array.isArray(v) ? v : (v as { items: (string | number)[] }).items).map(String);
      const append = !Array.isArray(v) && (v as { append?: boolean }).append === true;
      if (append) {
        const old = lists.get(name);
        if (old === undefined) err(diag(f, ['lists', name], RuleErrorCodes.APPEND_MISSING, `cannot append to list '${name}': no earlier file defines it`), f);
        else lists.set(name, [...old, ...items]);
      } else lists.set(name, items);
    }
  }
  // ---- collect macros ----
  interface MacroSrc {
    parts: { text: string; file: RuleFile; path: RulePath }[];
  }
  const macroSrc = new Map<string, MacroSrc>();
  for (const f of files) {
    for (const [name, v] of Object.entries(f.content.macros ?? {})) {
      const text = typeof v === 'string' ? v : v.condition;
      const path: RulePath = typeof v === 'string' ? ['macros', name] : ['macros', name, 'condition'];
      const append = typeof v !== 'string' && v.append === true;
      if (append) {
        const old = macroSrc.get(name);
        if (old === undefined) err(diag(f, ['macros', name], RuleErrorCodes.APPEND_MISSING, `cannot append to macro '${name}': no earlier file defines it`), f);
        else old.parts.push({ text, file: f, path });
      } else macroSrc.set(name, { parts: [{ text, file: f, path }] });
    }
  }
  const macros = new Map<string, ExprNode>();
  const macroParts = new Map<string, { node: ExprNode; file: RuleFile; path: RulePath }[]>();
  for (const [name, src] of macroSrc) {
    const nodes: { node: ExprNode; file: RuleFile; path: RulePath }[] = [];
    for (const p of src.parts) {
      try {
        nodes.push({ node: parseCondition(p.text), file: p.file, path: p.path });
      } catch (e) {
        if (!(e instanceof ConditionSyntaxError)) throw e;
        err(diag(p.file, p.path, RuleErrorCodes.SYNTAX, e.message, 'error', e.offset), p.file);
      }
    }
    if (nodes.length === 0) continue;
    macroParts.set(name, nodes);
    macros.set(name, nodes.length === 1 ? nodes[0]!.node : { kind: 'or', items: nodes.map((x) => x.node), offset: 0 });
  }
  const env: CompileEnv = { lists, macros };
  // validate every macro on its own, so errors point into the macro's file
  for (const [name, parts] of macroParts) {
    for (const p of parts) {
      try {
        compileExpanded(expand(p.node, env, [name]));
      } catch (e) {
        if (!(e instanceof CompileError)) throw e;
        err(diag(p.file, p.path, e.code, `macro '${name}': ${e.message}`, 'error', e.offset), p.file);
      }
    }
  }

  // ---- collect rules ----
  const merged = new Map<string, MergedRule>();
  const order: string[] = [];
  for (const f of files) {
    (f.content.rules ?? []).forEach((r, i) => {
      const old = merged.get(r.id);
      if (r.override === true || r.append === true) {
        if (old === undefined) {
          err(diag(f, ['rules', i, 'id'], RuleErrorCodes.APPEND_MISSING, `rule '${r.id}' ${r.append === true ? 'appends to' : 'overrides'} a rule no earlier file defines`), f);
          return;
        }
        if (r.append === true) {
          old.parts.push({ text: r.condition!, file: f, path: ['rules', i, 'condition'] });
          const { condition: _c, append: _a, ...rest } = r;
          void _c;
          void _a;
          Object.assign(old.spec, rest);
        } else {
          const { override: _o, ...rest } = r;
          void _o;
          Object.assign(old.spec, rest);
          if (r.condition !== undefined) old.parts = [{ text: r.condition, file: f, path: ['rules', i, 'condition'] }];
        }
        old.file = f;
        old.index = i;
        return;
      }
      if (old === undefined) order.push(r.id);
      merged.set(r.id, { spec: { ...r }, file: f, index: i, parts: [{ text: r.condition!, file: f, path: ['rules', i, 'condition'] }] });
    });
  }

  // ---- compile rules ----
  const rules: CompiledRule[] = [];
  for (const id of order) {
    const m = merged.get(id)!;
    const nodes: ExprNode[] = [];
    let failed = false;
    for (const p of m.parts) {
      try {
        const node = parseCondition(p.text);
        compileExpanded(expand(node, env)); // type-check this part where it was written
        nodes.push(node);
      } catch (e) {
        failed = true;
        if (e instanceof ConditionSyntaxError) err(diag(p.file, p.path, RuleErrorCodes.SYNTAX, e.message, 'error', e.offset), p.file);
        else if (e instanceof CompileError) err(diag(p.file, p.path, e.code, `rule '${id}': ${e.message}`, 'error', e.offset), p.file);
        else throw e;
      }
    }
    if (failed) continue;
    const root: ExprNode = nodes.length === 1 ? nodes[0]! : { kind: 'and', items: nodes, offset: 0 };
    const ex = expand(root, env);
    const s = m.spec;
    const d = s.detector;
    const keys = indexKeys(ex);
    const loc = m.file.locate(['rules', m.index]);
    rules.push({
      id,
      name: s.name ?? id,
      description: s.description ?? '',
      risk: s.risk!,
      action: s.action ?? (d !== undefined ? 'alert' : 'log'),
      enabled: s.enabled ?? true,
      tags: s.tags ?? [],
      ...(d !== undefined ? { detector: { windowUs: parseWindow(d.window)!, threshold: d.threshold, groupBy: d.groupBy ?? [], ...(d.distinct !== undefined ? { distinct: d.distinct } : {}), ...(d.sum !== undefined ? { sum: d.sum } : {}) } } : {}),
      condition: m.parts.length === 1 ? m.parts[0]!.text.trim() : m.parts.map((p) => `(${p.text.trim()})`).join(' and '),
      compiled: describeExpanded(ex),
      indexKeys: keys === undefined ? undefined : [...keys].sort(),
      fields: [...fieldsOf(ex)].sort(),
      source: { file: m.file.name, line: loc.line, column: loc.column },
      test: compileExpanded(ex),
      testFor: specializer(ex),
      shapeTestFor: shapeSpecializer(ex),
    });
  }

  // ---- groups ----
  const groups = new Map<string, string[]>();
  for (const f of files) {
    for (const [name, members] of Object.entries(f.content.groups ?? {})) {
      const ids = new Set<string>(groups.get(name) ?? []);
      members.forEach((mem, mi) => {
        let hit = 0;
        for (const r of rules) {
          const ok = mem.startsWith('tag:') ? r.tags.includes(mem.slice(4)) : mem.endsWith('*') ? r.id.startsWith(mem.slice(0, -1)) : r.id === mem;
          if (ok) {
            ids.add(r.id);
            hit++;
          }
        }
        if (hit === 0) diagnostics.push(diag(f, ['groups', name, mi], 'DBTAP_W_RULE_GROUP_EMPTY', `group '${name}': '${mem}' matches no rule`, 'warning'));
      });
      groups.set(name, [...ids]);
    }
  }
  diagnostics.sort((a, b) => (sortKey(a) < sortKey(b) ? -1 : sortKey(a) > sortKey(b) ? 1 : 0));
  return { ruleSet: new RuleSet(rules, groups, lists, diagnostics.filter((x) => x.severity === 'warning')), diagnostics, bad };
}

/** Per-index-key predicates of one condition, compiled on first use. */
function specializer(ex: Expanded): (key: string) => Predicate | false {
  let general: Predicate | undefined;
  const byKey = new Map<string, Predicate | false>();
  return (key) => {
    let p = byKey.get(key);
    if (p === undefined) {
      const sp = specialize(ex, key);
      p = sp === undefined ? (general ??= compileExpanded(ex)) : sp.kind === 'const' ? (sp.value ? () => true : false) : compileExpanded(sp);
      byKey.set(key, p);
    }
    return p;
  };
}

/** Per-index-key shape tests of one condition, compiled on first use. */
function shapeSpecializer(ex: Expanded): (key: string) => ShapeTest | undefined {
  const byKey = new Map<string, ShapeTest | undefined>();
  return (key) => {
    if (byKey.has(key)) return byKey.get(key);
    const sp = specialize(ex, key) ?? ex;
    const t = sp.kind === 'const' ? undefined : compileShapeTest(sp);
    byKey.set(key, t);
    return t;
  };
}

/** A source in load order: a file that read cleanly, or the error-free part of one that did not (checked, never loaded). */
interface Source {
  readonly file: RuleFile;
  readonly partial: boolean;
}

function sourcesOf(include: readonly RuleFile[] | undefined, r: ReadResult): Source[] {
  const out: Source[] = (include ?? []).map((file) => ({ file, partial: false }));
  if (r.file !== undefined) out.push({ file: r.file, partial: false });
  else if (r.partial !== undefined) out.push({ file: r.partial, partial: true });
  return out;
}

/**
 * Stages 2-4. Compiles the clean sources, dropping files with compile
 * errors (and re-merging) until none remain, so a bad file never
 * half-loads. Files that failed to read are then compiled once more, in
 * place and with only their error-free entries, to report their compile
 * errors too: one run shows every problem.
 */
function compileExcluding(sources: readonly Source[], readDiagnostics: Diagnostic[]): LoadResult {
  let good = sources.filter((s) => !s.partial).map((s) => s.file);
  const diagnostics = [...readDiagnostics];
  const seen = new Set<string>(diagnostics.map((d) => `${d.code}|${d.file}|${d.line}|${d.column}|${d.message}`));
  const keep = (d: Diagnostic): void => {
    const k = `${d.code}|${d.file}|${d.line}|${d.column}|${d.message}`;
    if (!seen.has(k)) {
      seen.add(k);
      diagnostics.push(d);
    }
  };
  for (;;) {
    const r = compilePass(good);
    for (const d of r.diagnostics) keep(d);
    if (r.bad.size === 0) {
      const partials = new Set(sources.filter((s) => s.partial).map((s) => s.file.name));
      if (partials.size > 0) for (const d of compilePass(sources.map((s) => s.file)).diagnostics) if (partials.has(d.file)) keep(d);
      diagnostics.sort((a, b) => (sortKey(a) < sortKey(b) ? -1 : sortKey(a) > sortKey(b) ? 1 : 0));
      return { ok: !diagnostics.some((d) => d.severity === 'error'), diagnostics, files: good, ruleSet: r.ruleSet };
    }
    good = good.filter((f) => !r.bad.has(f));
  }
}

/** Options of the loading functions. */
export interface LoadOptions {
  /** Sources merged before these (e.g. the built-in library), so files can append to or override them. */
  readonly include?: readonly RuleFile[];
}

/** Loads rule files (YAML or JSON) from disk, in order (later files append to / override earlier ones). */
export function loadRuleFiles(paths: readonly string[], options?: LoadOptions): LoadResult {
  const diagnostics: Diagnostic[] = [];
  const sources = sourcesOf(options?.include, { diagnostics: [] });
  for (const p of paths) {
    const r = readRuleFile(p);
    diagnostics.push(...r.diagnostics);
    sources.push(...sourcesOf(undefined, r));
  }
  return compileExcluding(sources, diagnostics);
}

/** Loads one rule text (YAML or JSON); `fileName` names it in diagnostics. */
export function loadRuleText(text: string, fileName: string, options?: LoadOptions): LoadResult {
  const r = readRuleText(text, fileName);
  return compileExcluding(sourcesOf(options?.include, r), [...r.diagnostics]);
}

/** Loads rules given as plain objects (no YAML involved); `name` names the source in diagnostics. */
export function loadRuleObjects(content: RuleFileContent, name = '<object>', options?: LoadOptions): LoadResult {
  const r = readRuleObject(content, name);
  return compileExcluding(sourcesOf(options?.include, r), [...r.diagnostics]);
}

/** Reads one rule text into a {@link RuleFile} without compiling it; throws `DBTAP_E_RULE_LOAD` on errors. */
export function parseRuleText(text: string, fileName: string): RuleFile {
  const r = readRuleText(text, fileName);
  if (r.file === undefined) throw new DbtapError(RuleErrorCodes.LOAD, `${fileName}: ${r.diagnostics.map(formatDiagnostic).join('; ')}`, { diagnostics: r.diagnostics });
  return r.file;
}

/**
 * Compiles sources into a {@link RuleSet} (merge in order, expand, compile,
 * index).
 * @throws DbtapError `DBTAP_E_RULE_LOAD` with `details.diagnostics` when any source has an error.
 */
export function compileRules(files: readonly RuleFile[] | LoadResult): RuleSet {
  const list = Array.isArray(files) ? (files as readonly RuleFile[]) : (files as LoadResult).files;
  const r = compilePass(list);
  const errors = r.diagnostics.filter((d) => d.severity === 'error');
  if (errors.length > 0) throw new DbtapError(RuleErrorCodes.LOAD, `rules do not compile: ${errors.map(formatDiagnostic).join('; ')}`, { diagnostics: errors });
  return r.ruleSet;
}

/** `file:line:column: severity CODE: message`, the form `dbtap rules check` prints. */
export function formatDiagnostic(d: Diagnostic): string {
  const where = d.line > 0 ? `${d.file}:${d.line}:${d.column}` : d.file;
  return `${where}: ${d.severity} ${d.code}: ${d.message}`;
}

/** Result of {@link checkRuleFiles}. */
export interface CheckResult {
  /** True when every file loads without errors. */
  readonly ok: boolean;
  /** Printable lines: one per diagnostic, then a summary. */
  readonly lines: string[];
  /** The diagnostics themselves. */
  readonly diagnostics: readonly Diagnostic[];
}

/**
 * Validates rule files for `dbtap rules check FILE...`: every file is read,
 * merged after `options.include` (the built-in library, so files that
 * extend it check cleanly) and compiled.
 */
export function checkRuleFiles(paths: readonly string[], options?: LoadOptions): CheckResult {
  const r = loadRuleFiles(paths, options);
  const lines = r.diagnostics.map(formatDiagnostic);
  const errors = r.diagnostics.filter((d) => d.severity === 'error').length;
  const warnings = r.diagnostics.length - errors;
  const own = r.ruleSet.rules.filter((x) => paths.includes(x.source.file)).length;
  lines.push(`${paths.length} file(s): ${errors} error(s), ${warnings} warning(s); ${own} rule(s) compiled`);
  return { ok: r.ok, lines, diagnostics: r.diagnostics };
}
