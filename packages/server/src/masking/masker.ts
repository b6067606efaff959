// Applies the masking rules to everything a record carries that can hold a
// value: SQL text, bound parameters, result rows, messages, connection
// attributes, fingerprints and alert details.
import type { AuditEvent, ParamValue } from '@dbtap/core';
import { TokenBuffer, dialectForDbType, type Dialect } from '@dbtap/rules';
import { compileMasking, type CompiledMasking, type MaskingConfig, type Replacer } from './config.js';
import { applyConnPassword, applyPatterns, maskSql } from './sql.js';

/** Counters of a {@link RecordMasker}. */
export interface MaskingStats {
  /** Records seen. */
  records: number;
  /** Records in which something was masked. */
  masked: number;
  /** Values (literals, parameters, cells, matches) replaced. */
  values: number;
}

/** A quote of any dialect's string literals. */
const QUOTE = /['"$]/;

/** Values shorter than this are not searched for in free text (too likely to hit unrelated text). */
const MIN_ECHO = 4;

function isWordChar(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f || c > 0x7f;
}

/** Replaces whole-word occurrences of each secret (of `minLength` characters or more) in `text`, longest first. */
function replaceEchoes(text: string, secrets: ReadonlyMap<string, string>, count: { n: number }, minLength = MIN_ECHO): string {
  let out = text;
  const list = [...secrets].filter(([raw]) => raw.length >= minLength).sort((a, b) => b[0].length - a[0].length);
  for (const [raw, rep] of list) {
    let from = 0;
    for (;;) {
      const i = out.indexOf(raw, from);
      if (i < 0) break;
      const end = i + raw.length;
      if ((i > 0 && isWordChar(out.charCodeAt(i - 1)) && isWordChar(raw.charCodeAt(0))) || (end < out.length && isWordChar(out.charCodeAt(end)) && isWordChar(raw.charCodeAt(raw.length - 1)))) {
        from = i + 1;
        continue;
      }
      out = out.slice(0, i) + rep + out.slice(end);
      count.n++;
      from = i + rep.length;
    }
  }
  return out;
}

/**
 * Masks sensitive values in audit records before they are stored, chained,
 * alerted on or sent anywhere. Build it once from a {@link MaskingConfig}
 * (validated here: `DBTAP_E_CONFIG` naming the bad key) and call
 * {@link RecordMasker.mask} on every record, after the rules engine has
 * judged it (the verdict, verb and fingerprint are computed from the
 * unmasked statement) and before anything else sees it.
 *
 * The same value gets the same replacement wherever it appears in a record:
 * a literal masked in the SQL is also replaced where the server's error
 * message or a result row echoes it.
 */
export class RecordMasker {
  private readonly m: CompiledMasking;
  private readonly scratch = new TokenBuffer();
  private readonly counters: MaskingStats = { records: 0, masked: 0, values: 0 };
  private readonly empty: boolean;

  /**
   * @param config The rules.
   * @param options `dialectFor`: the SQL dialect of a record (e.g. its
   *   decoder's); when absent or undefined, `dialectForDbType(dbType)`.
   */
  constructor(
    config: MaskingConfig,
    private readonly options: { dialectFor?: (event: AuditEvent) => Dialect | undefined } = {},
  ) {
    this.m = compileMasking(config);
    this.empty = this.m.password === undefined && this.m.columns.size === 0 && this.m.patterns.length === 0;
  }

  /** Counters so far. */
  stats(): MaskingStats {
    return { ...this.counters };
  }

  /**
   * Returns the record with its sensitive values replaced: a shallow copy
   * with new field values where something was masked (the input is not
   * changed), or the record itself when nothing was.
   */
  readonly mask = (e: AuditEvent): AuditEvent => {
    this.counters.records++;
    const m = this.m;
    if (this.empty) return e;
    const count = { n: 0 };
    const secrets = new Map<string, string>();
    let out: AuditEvent | undefined;
    const set = <K extends keyof AuditEvent>(k: K, v: AuditEvent[K]): void => {
      out ??= { ...e };
      out[k] = v;
    };
    const text = (s: string): string => {
      let t = m.patterns.length > 0 ? applyPatterns(s, m.patterns, undefined, count) : s;
      if (m.password !== undefined) t = applyConnPassword(t, m.password, undefined, count);
      return secrets.size > 0 ? replaceEchoes(t, secrets, count) : t;
    };

    let paramMarks: Map<number, Replacer> | undefined;
    const dialect = this.options.dialectFor?.(e) ?? dialectForDbType(e.dbType);
    let identifiers: Map<string, string> | undefined;
    if (typeof e.sql === 'string' && e.sql !== '') {
      const r = maskSql(e.sql, dialect, m, this.scratch);
      if (r.sql !== e.sql) set('sql', r.sql);
      for (const [k, v] of r.secrets) secrets.set(k, v);
      identifiers = r.identifiers;
      count.n += r.replaced;
      paramMarks = r.params;
    }
    if (Array.isArray(e.params) && e.params.length > 0) {
      let changed = false;
      const ps = e.params.map((p, i) => {
        const v = this.maskParam(p, paramMarks?.get(i), secrets, count);
        if (v !== p) changed = true;
        return v;
      });
      if (changed) set('params', ps);
    }
    if (Array.isArray(e.rows) && e.rows.length > 0) {
      const replacers = (e.columns ?? []).map((c) => this.columnReplacer(c, e));
      let changed = false;
      const rows = e.rows.map((row) => {
        let rowChanged = false;
        const cells = row.map((cell, i) => {
          if (cell === null || typeof cell !== 'string') return cell;
          const r = replacers[i];
          let v: string;
          if (r !== undefined) {
            v = r(cell);
            count.n++;
          } else {
            const echoed = cell.length >= MIN_ECHO ? secrets.get(cell) : undefined;
            if (echoed !== undefined) {
              v = echoed;
              count.n++;
            } else v = text(cell);
          }
          if (v !== cell) rowChanged = true;
          return v;
        });
        if (!rowChanged) return row;
        changed = true;
        return cells;
      });
      if (changed) set('rows', rows);
    }
    if (typeof e.message === 'string' && e.message !== '') {
      const v = text(this.messageColumns(e.message, e, count));
      if (v !== e.message) set('message', v);
    }
    if (typeof e.fingerprint === 'string') {
      let v = m.patterns.length > 0 ? applyPatterns(e.fingerprint, m.patterns, undefined, count) : e.fingerprint;
      // literals are already `?` there; a password written as an identifier is not (any length: it is a whole word of the statement)
      if (identifiers !== undefined && identifiers.size > 0) v = replaceEchoes(v, new Map([...identifiers.keys()].map((k) => [k, '?'])), count, 1);
      if (v !== e.fingerprint) set('fingerprint', v);
    }
    if (Array.isArray(e.columns) && e.columns.length > 0) {
      // MySQL names an unaliased result column after its expression: SELECT PASSWORD('pw') has a column "PASSWORD('pw')"
      let changed = false;
      const cols = e.columns.map((c) => {
        if (typeof c !== 'string' || c === '') return c;
        // a secret in a column name is a quoted literal of its expression: names without quotes skip the lexer
        let v = c;
        if (QUOTE.test(c)) {
          const r = maskSql(c, dialect, m, this.scratch);
          count.n += r.replaced;
          v = r.sql;
        }
        v = text(v);
        if (v !== c) changed = true;
        return v;
      });
      if (changed) set('columns', cols);
    }
    if (e.attributes !== undefined && e.attributes !== null && typeof e.attributes === 'object') {
      let changed = false;
      const attrs: Record<string, string> = {};
      for (const [k, v] of Object.entries(e.attributes)) {
        const nv = typeof v === 'string' ? text(v) : v;
        if (nv !== v) changed = true;
        attrs[k] = nv;
      }
      if (changed) set('attributes', attrs);
    }
    if (e.alert !== undefined && e.alert !== null && typeof e.alert === 'object') {
      const a = e.alert;
      const reason = typeof a.reason === 'string' ? text(a.reason) : a.reason;
      let group = a.group;
      if (a.group !== undefined && a.group !== null && typeof a.group === 'object') {
        const g: Record<string, string> = {};
        let changed = false;
        for (const [k, v] of Object.entries(a.group)) {
          const nv = typeof v === 'string' ? text(v) : v;
          if (nv !== v) changed = true;
          g[k] = nv;
        }
        if (changed) group = g;
      }
      if (reason !== a.reason || group !== a.group) set('alert', { ...a, reason, ...(group !== undefined ? { group } : {}) });
    }
    if (count.n > 0) {
      this.counters.masked++;
      this.counters.values += count.n;
    }
    return out ?? e;
  };

  private maskParam(p: ParamValue, r: Replacer | undefined, secrets: Map<string, string>, count: { n: number }): ParamValue {
    if (p === null || p === undefined) return p;
    if (r !== undefined) {
      const raw = typeof p === 'object' ? ('text' in p ? p.text : p.hex) : String(p);
      const rep = r(raw);
      secrets.set(raw, rep);
      count.n++;
      return typeof p === 'object' ? { type: p.type, text: rep } : rep;
    }
    const m = this.m;
    const text = (s: string): string => {
      let t = m.patterns.length > 0 ? applyPatterns(s, m.patterns, secrets, count) : s;
      if (m.password !== undefined) t = applyConnPassword(t, m.password, secrets, count);
      return t;
    };
    if (typeof p === 'string') return text(p);
    if (typeof p === 'number' || typeof p === 'bigint') {
      const s = String(p);
      const t = text(s);
      return t === s ? p : t;
    }
    if (typeof p === 'object' && 'text' in p && typeof p.text === 'string') {
      const t = text(p.text);
      return t === p.text ? p : { type: p.type, text: t };
    }
    return p;
  }

  /** The replacer of a result column or message column name, when it is sensitive for this record. */
  private columnReplacer(column: string, e: AuditEvent): Replacer | undefined {
    if (typeof column !== 'string') return undefined;
    const name = column.toLowerCase();
    const m = this.m;
    if (m.password !== undefined && m.passwordColumns.has(name)) return m.password;
    const rules = m.columns.get(name);
    if (rules === undefined) return undefined;
    for (const rule of rules) {
      if (rule.table === undefined) return rule.replace;
      const t = rule.table;
      const named = Array.isArray(e.objects) && e.objects.length > 0
        ? e.objects.some((o) => typeof o?.name === 'string' && o.name.toLowerCase() === t)
        : typeof e.sql === 'string' && e.sql.toLowerCase().includes(t);
      if (named) return rule.replace;
    }
    return undefined;
  }

  /**
   * Values that server messages quote next to the column they belong to:
   * PostgreSQL `Key (col)=(value)`, MySQL `Duplicate entry 'value' for key
   * 'table.col'` and `... value: 'value' for column 'col'`.
   */
  private messageColumns(msg: string, e: AuditEvent, count: { n: number }): string {
    let out = msg.replace(/Key \(([^()]*)\)=\((.*?)\)(?= |$|\.)/g, (all, cols: string, vals: string) => {
      const names = cols.split(', ');
      const values = names.length === 1 ? [vals] : vals.split(', ');
      if (values.length !== names.length) return all;
      let changed = false;
      const nv = values.map((v, i) => {
        const r = this.columnReplacer(names[i]!.replace(/^"|"$/g, ''), e);
        if (r === undefined) return v;
        changed = true;
        count.n++;
        return r(v);
      });
      return changed ? `Key (${cols})=(${nv.join(', ')})` : all;
    });
    out = out.replace(/'((?:[^'\\]|\\.)*)' for (key|column) [`'"]?((?:[^\s`'".]+[`'"]?\.[`'"]?)*)([^\s`'".]+)[`'"]?/g, (all, value: string, _what: string, _qual: string, col: string) => {
      const r = this.columnReplacer(col, e);
      if (r === undefined) return all;
      count.n++;
      return all.replace(`'${value}'`, `'${r(value)}'`);
    });
    return out;
  }
}
