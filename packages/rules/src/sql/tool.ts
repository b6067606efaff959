// Line-oriented SQL tools behind `dbtap sql classify|fingerprint|sqli`: one
// JSON object out per statement line in, so shell pipelines and other
// languages can use the analysis without linking the library.
import type { ObjectRef, StatementType } from '@dbtap/core';
import { analyzeSql as analyzeSql_ } from './analyze.js';
import { dialectOptions as dialectOptions_, type Dialect, type DialectOptions } from './dialect.js';
import { fingerprint as fingerprint_ } from './fingerprint.js';
import { detectSqlInjection as detectSqlInjection_ } from './sqli.js';
// Local bindings: per-file transpilers (tsx, ts-node) turn imported bindings into
// getter calls on every use, which costs more than the lexer itself.
const analyzeSql = analyzeSql_;
const dialectOptions = dialectOptions_;
const fingerprint = fingerprint_;
const detectSqlInjection = detectSqlInjection_;

/** Classification of a SQL text (the primary statement, see `analyzeSql`). */
export interface Classification {
  /** Statement class. */
  readonly type: StatementType;
  /** Leading verb(s). */
  readonly verb: string;
  /** Objects touched by all statements. */
  readonly objects: ObjectRef[];
  /** WHERE presence of the primary statement. */
  readonly hasWhere: boolean;
  /** Number of statements in the text. */
  readonly statements: number;
}

/** Classifies a SQL text. */
export function classify(sql: string, dialect?: Dialect | DialectOptions): Classification {
  const a = analyzeSql(sql, { dialect: dialect ?? 'mysql' });
  return { type: a.type, verb: a.verb, objects: a.objects, hasWhere: a.hasWhere, statements: a.statements.length };
}

/** Modes of {@link runSqlTool}. */
export type SqlToolMode = 'classify' | 'fingerprint' | 'sqli';

/**
 * Runs a SQL tool over lines of input (one statement per line) and yields
 * one JSON line per input line: `{"sql":..., ...}` with the classification
 * (every statement, plus the fingerprint), the fingerprint, or the injection
 * verdict. Empty lines yield nothing. A line that fails for any reason yields
 * `{"sql":..., "error":...}` instead of stopping the stream.
 */
export function* runSqlTool(mode: SqlToolMode, lines: Iterable<string>, dialect: Dialect | DialectOptions = 'mysql'): Iterable<string> {
  dialectOptions(dialect); // fail early on a bad dialect
  for (const raw of lines) {
    const sql = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (sql.trim().length === 0) continue;
    try {
      if (mode === 'fingerprint') yield JSON.stringify({ sql, fingerprint: fingerprint(sql, dialect) });
      else if (mode === 'sqli') {
        const r = detectSqlInjection(sql, dialect);
        yield JSON.stringify({ sql, injection: r.injection, score: r.score, reasons: r.reasons });
      } else {
        const a = analyzeSql(sql, { dialect });
        yield JSON.stringify({
          sql,
          type: a.type,
          verb: a.verb,
          objects: a.objects,
          hasWhere: a.hasWhere,
          fingerprint: a.fingerprint,
          statements: a.statements.map((s) => ({ type: s.type, verb: s.verb, objects: s.objects, hasWhere: s.hasWhere, fingerprint: s.fingerprint })),
        });
      }
    } catch (err) {
      yield JSON.stringify({ sql, error: (err as Error).message });
    }
  }
}
