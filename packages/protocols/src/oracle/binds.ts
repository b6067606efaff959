// Oracle TTC bind variables: read from call and answer bodies with the field readers of ttc.ts.
import { TtcType } from './messages.js';
import { Rep, readClr, readUb } from './ttc.js';

// ---- binds -------------------------------------------------------------------------

/** Type and character set form of one bind, from its metadata. */
export interface BindMeta {
  readonly type: number;
  /** 1 database charset, 2 national charset. */
  readonly form: number;
}

/** LOB types, whose bind value is a ub4 locator length and the locator (node-oracledb `writeBindParamsColumn`). */
const lobTypes = new Set([112, 113, 114]);

/**
 * One row of bind values (after its 0x07): a CLR per bind; LOB locators
 * behind their ub4 length. Undefined when a value runs past the request.
 */
export function bindRow(b: Uint8Array, at: number, rep: Rep, meta: readonly BindMeta[]): { values: (Uint8Array | undefined)[]; next: number } | undefined {
  const end = b.length;
  const values: (Uint8Array | undefined)[] = [];
  let q = at;
  for (const m of meta) {
    if (lobTypes.has(m.type)) {
      const len = readUb(b, q, end, rep, 4);
      if (len === undefined || len[0] < 0) return undefined;
      q = len[1];
      if (len[0] === 0) {
        values.push(undefined);
        continue;
      }
    }
    const v = readClr(b, q, end);
    if (v === undefined) return undefined;
    values.push(v.bytes);
    q = v.next;
  }
  return { values, next: q };
}

/**
 * The binds of a re-execute (0x04) or re-execute-and-fetch (0x4e) of a
 * cursor whose OALL8 metadata is known (node-oracledb execute.js
 * `writeReExecuteMessage`):
 *
 *   ub4 cursor | ub4 iterations | ub4 execute flags | ub4 execute flags 2 | (0x07 | value per bind)*
 *
 * The first row is returned; it must end the request or be followed by the
 * next row. Out binds are not sent again, so a PL/SQL call with out binds
 * gives fewer values than binds and no row.
 */
export function reexecBinds(b: Uint8Array, at: number, rep: Rep, meta: readonly BindMeta[]): (Uint8Array | undefined)[] | undefined {
  if (meta.length === 0) return undefined;
  let p = at;
  for (let i = 0; i < 4; i++) {
    const v = readUb(b, p, b.length, rep, 4);
    if (v === undefined) return undefined;
    p = v[1];
  }
  if (b[p] !== TtcType.RowData) return undefined;
  const row = bindRow(b, p + 1, rep, meta);
  if (row === undefined || (row.next !== b.length && b[row.next] !== TtcType.RowData)) return undefined;
  return row.values;
}

/**
 * The binds of a thin driver's OALL8 on a cursor it parsed before, sent
 * without the SQL text (node-oracledb execute.js `writeExecuteMessage` with
 * a cursor id: batch errors, DML row counts, a statement that must be
 * executed in full). Thin drivers write 1-byte pointers and length-prefixed
 * integers, so the fixed fields can be walked:
 *
 *   ub4 options | ub4 cursor | ptr | ub4 SQL length (0) | ptr | ub4 al8i4 length (13) | ptr | ptr
 *   | u8 | ub4 rows to prefetch | ub4 max long | ptr | ub4 binds | 5 ptr | ptr | ub4 defines
 *   | ub4 registration id | 3 ptr | ub4 | ptr | ub4 | ub4 | ptr | ub4 | ptr
 *   | [12.2: ptr | ub4 | ptr | ub4 | ptr] | [12.2 ext 1: ptr | ub4]
 *
 * then the al8i4 vector, the bind metadata and the row (see `readBinds`).
 * The optional fields are all zero (one byte each): the ones the field
 * version added are tried in turn, and the layout is accepted only when the
 * metadata of exactly the announced number of binds, all with a non-zero
 * type, ends at the row and its values fit.
 */
export function thinExecuteBinds(b: Uint8Array, at: number): { meta: BindMeta[]; values: (Uint8Array | undefined)[] } | undefined {
  const end = b.length;
  let p = at;
  let binds = 0;
  // u = ub4, b = pointer or byte, n = the bind count.
  for (const f of 'uububu' + 'bbbuubn' + 'bbbbbbu' + 'ubbbububuubub') {
    if (f === 'b') {
      if (p >= end || b[p]! > 1) return undefined;
      p++;
      continue;
    }
    const v = readUb(b, p, end, Rep.Var, 4);
    if (v === undefined || v[0] < 0) return undefined;
    if (f === 'n') binds = v[0];
    p = v[1];
  }
  if (binds <= 0) return undefined;
  for (const extra of [7, 5, 0]) {
    if (p + extra > end) continue;
    let zeros = true;
    for (let i = p; i < p + extra; i++) if (b[i] !== 0) zeros = false;
    if (!zeros) continue;
    const r = readBinds(b, p + extra, Rep.Var, binds);
    if (r !== undefined && r.meta.every((m) => m.type !== 0)) return r;
  }
  return undefined;
}

/** Placeholders of a SQL text (`:name`, `:1`), distinct, outside quotes and comments. */
export function countBinds(sql: string): number {
  const names = new Set<string>();
  const re = /'(?:[^']|'')*'|"[^"]*"|--[^\n]*|\/\*[\s\S]*?\*\/|:([A-Za-z0-9_$#]+)/g;
  for (let m = re.exec(sql); m !== null; m = re.exec(sql)) if (m[1] !== undefined) names.add(m[1].toUpperCase());
  return names.size;
}

/**
 * The binds of an OALL8 that carries its SQL (node-oracledb execute.js
 * `writeExecuteMessage`, `writeColumnMetadata`, `writeBindParams`): after the
 * SQL come the 13 ub4 of the al8i4 vector, then per bind
 *
 *   u8 type | u8 flags | u8 precision | u8 scale | ub4 buffer size | ub4 max array elements
 *   | ub8 continuation flags | ub4 OID | ub2 version | ub2 charset id | u8 form
 *   | ub4 LOB prefetch (11.2+) | [ub4 column id (12.2+)]
 *
 * and then a row-data message (0x07) with one CLR per bind. The optional
 * trailing fields are tried both ways; the layout is accepted only when the
 * metadata ends at a 0x07 and the values fit the request.
 */
export function readBinds(b: Uint8Array, at: number, rep: Rep, n: number): { meta: BindMeta[]; values: (Uint8Array | undefined)[] } | undefined {
  if (n <= 0 || n > 1000) return undefined;
  const end = b.length;
  let p = at;
  for (let i = 0; i < 13; i++) {
    const v = readUb(b, p, end, rep, 4);
    if (v === undefined) return undefined;
    p = v[1];
  }
  for (const extra of [1, 0, 2]) {
    const meta: BindMeta[] = [];
    let q = p;
    let ok = true;
    for (let i = 0; i < n && ok; i++) {
      if (q + 4 > end) {
        ok = false;
        break;
      }
      const type = b[q]!;
      q += 4;
      let form = 1;
      const fields: (2 | 4 | 1)[] = [4, 4, 4, 4, 2, 2, 1];
      for (let k = 0; k < extra; k++) fields.push(4);
      for (let k = 0; k < fields.length; k++) {
        const w = fields[k]!;
        if (w === 1) {
          if (q >= end) ok = false;
          else form = b[q++]!;
          continue;
        }
        const v = readUb(b, q, end, rep, w);
        if (v === undefined) {
          ok = false;
          break;
        }
        q = v[1];
      }
      meta.push({ type, form });
    }
    if (!ok || b[q] !== TtcType.RowData) continue;
    const row = bindRow(b, q + 1, rep, meta);
    if (row !== undefined) return { meta, values: row.values };
  }
  return undefined;
}
