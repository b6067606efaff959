// Oracle cursor bookkeeping: what a session remembers of each parsed cursor
// (its SQL and the bind metadata of the call that parsed it), the statement
// record held open while later calls continue its cursor, and the rows its
// answers account for: the count of a status, and the first rows as text
// where the describe is in a layout the decoder knows.
import { decodeText, type AuditEvent } from '@dbtap/core';
import type { BindMeta } from './binds.js';
import { TtcType } from './messages.js';
import { describeLe, describeV7, type ColumnInfo, rowsAfter } from './rows.js';
import { Rep, type StatusFields } from './ttc.js';
import { bindValue } from './values.js';

/** Most cursors whose SQL is remembered per session. */
export const MAX_CURSORS = 1024;

/** What a parsed cursor is remembered by: its SQL and the bind metadata of the call that parsed it. */
export interface Cursor {
  readonly sql: string;
  readonly binds: readonly BindMeta[] | undefined;
}

/** A statement record kept open while later calls continue its cursor (execute after parse, fetches). */
export interface Held {
  ev: AuditEvent;
  cursor: number;
  parseOnly: boolean;
  /** The columns of its describe, when read: rows of later answers on the cursor are kept as text. */
  columns: Columns | undefined;
}

/** The columns of a describe, and whether it was the OCI 8 one (its rows end with a zero ub2). */
export interface Columns {
  readonly list: readonly ColumnInfo[];
  readonly v7: boolean;
}

const isQuery = (sql: string): boolean => /^\s*(?:\(\s*)*(SELECT|WITH)\b/i.test(sql);
const isDml = (sql: string): boolean => /^\s*(INSERT|UPDATE|DELETE|MERGE)\b/i.test(sql);

/** Rows of a status: fetched for a query, affected for DML. */
export function rowsOf(ev: AuditEvent, status: StatusFields | undefined): void {
  const rows = status?.rowNumber;
  const sql = ev.sql;
  if (rows === undefined || sql === undefined) return;
  if (isQuery(sql)) ev.rowsReturned = rows;
  else if (isDml(sql)) ev.affectedRows = rows;
}

/**
 * Column names and the first `maxRows` rows as text, where the describe
 * is in a layout the decoder knows: the describe message (0x10) of 11g
 * OCI clients (`describeLe`), or the one OCI 8 clients get in the answer
 * to their bundled parse (`describeV7`; its rows come in the answer to the
 * execute that follows). Returns the columns, for the rows of later
 * answers on the cursor.
 */
export function rowText(ev: AuditEvent, b: Uint8Array, rep: Rep, maxRows: number, charset: string): Columns | undefined {
  if (rep !== Rep.Le) return undefined;
  let d = b[0] === TtcType.Parameter ? describeV7(b, 0) : undefined;
  const v7 = d !== undefined;
  if (d === undefined) {
    const at = b.indexOf(TtcType.Describe);
    if (at < 0 || at > 64) return undefined;
    d = describeLe(b, at);
    if (d === undefined) return undefined;
  }
  const cols: Columns = { list: d.columns, v7 };
  ev.columns = d.columns.map((c) => c.name);
  keepRows(ev, cols, b, d.next, maxRows, charset);
  return cols;
}

/** Adds the rows of `b[from..]` to the record's first `maxRows` rows (text in `charset`, or UTF-16 for the national charset). */
export function keepRows(ev: AuditEvent, cols: Columns, b: Uint8Array, from: number, maxRows: number, charset: string): void {
  const room = maxRows - (ev.rows?.length ?? 0);
  if (room <= 0) return;
  const columns = cols.list;
  const rows = rowsAfter(b, from, columns.map((c) => c.type), room, cols.v7);
  if (rows.length === 0) return;
  const text = rows.map((r) =>
    r.map((v, i) => {
      const col = columns[i]!;
      const x = bindValue(col.type, v, (t) => decodeText(t, col.form === 2 ? 'utf-16be' : charset));
      return x === null || typeof x === 'string' ? x : x.hex;
    }),
  );
  if (ev.rows === undefined) ev.rows = text;
  else ev.rows.push(...text);
}
