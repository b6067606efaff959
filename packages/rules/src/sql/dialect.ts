import { DbtapError, ErrorCodes } from '@dbtap/core';

/** SQL dialect families the lexer knows. `mysql` covers MariaDB too. */
export type Dialect = 'mysql' | 'postgres' | 'tsql' | 'oracle' | 'db2';

/** Every {@link Dialect}, in a stable order. */
export const DIALECTS: readonly Dialect[] = ['mysql', 'postgres', 'tsql', 'oracle', 'db2'];

/**
 * Lexical rules of one dialect. The lexer reads these flags instead of
 * branching on the dialect name, so a product with its own quirks (say a
 * MySQL server running with `ANSI_QUOTES`) can pass its own set.
 */
export interface DialectOptions {
  /** The family these options describe. */
  readonly name: Dialect;
  /** Backslash escapes inside '...' and "..." strings (MySQL without `NO_BACKSLASH_ESCAPES`). */
  readonly backslashEscapes: boolean;
  /** `"..."` is a string literal (MySQL without `ANSI_QUOTES`); otherwise a quoted identifier. */
  readonly doubleQuoteString: boolean;
  /** `` `name` `` is a quoted identifier (MySQL). */
  readonly backtickIdent: boolean;
  /** `[name]` is a quoted identifier (T-SQL). */
  readonly bracketIdent: boolean;
  /** `#` starts a comment to end of line (MySQL). */
  readonly hashComment: boolean;
  /** `--` starts a comment only when followed by whitespace or end of text (MySQL). */
  readonly dashCommentNeedsSpace: boolean;
  /** Block comments nest (PostgreSQL, T-SQL). */
  readonly nestedComments: boolean;
  /** `/*! ... *\/` and `/*M! ... *\/` bodies are executed as SQL (MySQL, MariaDB). */
  readonly executableComments: boolean;
  /** `$tag$ ... $tag$` string constants (PostgreSQL). */
  readonly dollarQuotes: boolean;
  /** `$1` positional parameters (PostgreSQL). */
  readonly dollarParams: boolean;
  /** `:name` / `:1` bind variables (Oracle, DB2). */
  readonly colonParams: boolean;
  /** `@name` is a parameter (T-SQL); otherwise `@name` is a user variable (MySQL). */
  readonly atParams: boolean;
  /** `E'...'` strings with backslash escapes (PostgreSQL). */
  readonly escapeStrings: boolean;
  /** Oracle alternative quoting `q'[...]'`. */
  readonly qQuote: boolean;
  /** `#name` is an identifier (T-SQL temporary tables). */
  readonly hashIdent: boolean;
}

const BASE: Omit<DialectOptions, 'name'> = {
  backslashEscapes: false,
  doubleQuoteString: false,
  backtickIdent: false,
  bracketIdent: false,
  hashComment: false,
  dashCommentNeedsSpace: false,
  nestedComments: false,
  executableComments: false,
  dollarQuotes: false,
  dollarParams: false,
  colonParams: false,
  atParams: false,
  escapeStrings: false,
  qQuote: false,
  hashIdent: false,
};

const OPTIONS: Readonly<Record<Dialect, DialectOptions>> = {
  // MySQL 8.0 reference, 9.1 "String Literals", 9.2 "Schema Object Names", 11.7 "Comments".
  mysql: { ...BASE, name: 'mysql', backslashEscapes: true, doubleQuoteString: true, backtickIdent: true, hashComment: true, dashCommentNeedsSpace: true, executableComments: true },
  // PostgreSQL docs 4.1 "Lexical Structure" (nested comments, dollar quoting, E'' strings).
  postgres: { ...BASE, name: 'postgres', nestedComments: true, dollarQuotes: true, dollarParams: true, escapeStrings: true },
  // T-SQL: [brackets], nested /* */, @variables, #temp tables.
  tsql: { ...BASE, name: 'tsql', bracketIdent: true, nestedComments: true, atParams: true, hashIdent: true },
  oracle: { ...BASE, name: 'oracle', colonParams: true, qQuote: true },
  db2: { ...BASE, name: 'db2', colonParams: true },
};

/** The lexical options of a dialect family. */
export function dialectOptions(dialect: Dialect | DialectOptions | undefined): DialectOptions {
  if (dialect === undefined) return OPTIONS.mysql;
  if (typeof dialect === 'object') return dialect;
  const o = OPTIONS[dialect];
  if (o === undefined) throw new DbtapError(ErrorCodes.INVALID_ARGUMENT, `unknown SQL dialect "${String(dialect)}" (expected one of ${DIALECTS.join(', ')})`);
  return o;
}

/**
 * Parses a dialect name as a user would type it (`mysql`, `mariadb`, `postgres`,
 * `postgresql`, `pg`, `tsql`, `mssql`, `sqlserver`, `oracle`, `db2`).
 * @throws DbtapError `DBTAP_E_INVALID_ARGUMENT` for anything else.
 */
export function parseDialect(name: string): Dialect {
  switch (name.trim().toLowerCase()) {
    case 'mysql':
    case 'mariadb':
      return 'mysql';
    case 'postgres':
    case 'postgresql':
    case 'pg':
    case 'pgsql':
      return 'postgres';
    case 'tsql':
    case 't-sql':
    case 'mssql':
    case 'sqlserver':
    case 'tds':
    case 'sybase':
      return 'tsql';
    case 'oracle':
    case 'plsql':
      return 'oracle';
    case 'db2':
    case 'drda':
      return 'db2';
    default:
      throw new DbtapError(ErrorCodes.INVALID_ARGUMENT, `unknown SQL dialect "${name}" (expected one of ${DIALECTS.join(', ')})`);
  }
}

/**
 * The dialect to lex an audit record's SQL with, from its `dbType`
 * (`mysql`, `postgres`, `tds`, `oracle`, `drda`, ...). Unknown types get MySQL,
 * the most permissive lexer (it accepts every quoting form the others do
 * except brackets and dollar quotes).
 */
export function dialectForDbType(dbType: string | undefined): Dialect {
  switch (dbType) {
    case 'postgres':
    case 'postgresql':
    case 'kingbase':
    case 'opengauss':
    case 'gaussdb':
      return 'postgres';
    case 'tds':
    case 'mssql':
    case 'sybase':
      return 'tsql';
    case 'oracle':
    case 'tns':
      return 'oracle';
    case 'drda':
    case 'db2':
      return 'db2';
    default:
      return 'mysql';
  }
}
