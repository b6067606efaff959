// Bytes -> DRDA structures: DDM objects inside a DSS, their parameters, the
// SQLCA, SQL statement text, package/section names, and the plausibility
// check that detection and resynchronisation share.
import { Outcome } from '../kit/outcome.js';
import { cpName, Cp, DssType, type Ddm, type Sqlca } from './messages.js';
import { Cursor, ddmText, decodeCcsid, type Codec } from './values.js';

/**
 * Every DDM object in `b` (a DSS payload or an object's parameters):
 *
 * ```
 *   LL LL CP CP data...            LL < 0x8000: LL counts the 4 header bytes
 *   8x xx CP CP [n-byte length]    LL >= 0x8000: (LL & 0x7FFF) - 4 length bytes
 *                                  follow (none: the object runs to the end)
 * ```
 *
 * A length past the end is cut to what is there (a truncated capture); a
 * length below 4 ends the list.
 */
export function parseDdms(b: Uint8Array, start = 0, end = b.length): Ddm[] {
  const out: Ddm[] = [];
  let i = start;
  while (i + 4 <= end) {
    const ll = (b[i]! << 8) | b[i + 1]!;
    const cp = (b[i + 2]! << 8) | b[i + 3]!;
    let from = i + 4;
    let to: number;
    if ((ll & 0x8000) !== 0) {
      const n = (ll & 0x7fff) - 4;
      if (n < 0 || n > 8) break;
      if (n === 0) to = end;
      else {
        let len = 0;
        for (let k = 0; k < n; k++) len = len * 256 + (b[from + k] ?? 0);
        from += n;
        to = from + len;
      }
    } else {
      if (ll < 4) break;
      to = i + ll;
    }
    if (to > end) to = end;
    if (from > to) from = to;
    out.push({ cp, body: b.subarray(from, to) });
    i = to;
  }
  return out;
}

/** The first parameter `cp` among `params`. */
export function param(params: readonly Ddm[], cp: number): Uint8Array | undefined {
  for (const p of params) if (p.cp === cp) return p.body;
  return undefined;
}

/** A character parameter as text (EBCDIC or ASCII), or undefined. */
export function textParam(params: readonly Ddm[], cp: number): string | undefined {
  const b = param(params, cp);
  return b === undefined ? undefined : ddmText(b);
}

/** A 1- or 2-byte binary number parameter (SVRCOD, SECMEC, SECCHKCD, CCSIDs). */
export function numParam(params: readonly Ddm[], cp: number): number | undefined {
  const b = param(params, cp);
  if (b === undefined || b.length === 0) return undefined;
  return b.length === 1 ? b[0]! : (b[0]! << 8) | b[1]!;
}

/** Commands a client opens a DSS with (the code points dbtap accepts when resynchronising). */
const COMMANDS: ReadonlySet<number> = new Set([
  Cp.EXCSAT, Cp.ACCSEC, Cp.SECCHK, Cp.ACCRDB, Cp.CLSQRY, Cp.CNTQRY, Cp.DSCSQLSTT, Cp.EXCSQLIMM, Cp.EXCSQLSTT,
  Cp.OPNQRY, Cp.PRPSQLSTT, Cp.RDBCMM, Cp.RDBRLLBCK, Cp.EXCSQLSET, 0x2009, 0x2003, 0x2004, 0x2002,
]);
/** Objects an OBJDSS carries. */
const OBJECTS: ReadonlySet<number> = new Set([
  Cp.SQLSTT, Cp.SQLATTR, Cp.SQLDTA, Cp.EXTDTA, Cp.SQLCARD, Cp.SQLDARD, Cp.SQLDTARD, Cp.QRYDSC, Cp.QRYDTA, 0x2419, 0x241e,
]);

/**
 * Whether a DSS starts at `b[at]` (`end` bounds the bytes there): its
 * length, `Outcome.More` when 10 bytes are not there yet, else
 * `Outcome.Malformed`. DRDA Vol. 1, "DSS Formats":
 *
 * ```
 *   0      2    3       4        6      8      10
 *   | LL LL| D0 | format| corr id| ll ll| cp cp| ...
 *            magic  0CES TTTT       first DDM object
 * ```
 *
 * format: bit 6 chained, bit 5 continue on error, bit 4 same correlator,
 * low nibble the type (1 request, 2 reply, 3 object, 4 encrypted, 5 request
 * without reply); the top bit is reserved (zero). The first object's code
 * point must be a command (requests), a reply message (replies) or a command
 * or reply object (objects).
 */
export function checkDss(b: Uint8Array, at: number, end: number): number {
  if (end - at < 3) return Outcome.More;
  if (b[at + 2] !== 0xd0) return Outcome.Malformed;
  if (end - at < 10) return Outcome.More;
  const len = ((b[at]! << 8) | b[at + 1]!) & 0x7fff;
  const fmt = b[at + 3]!;
  const type = fmt & 0x0f;
  if ((fmt & 0x80) !== 0 || type < DssType.Request || type > DssType.RequestNoReply) return Outcome.Malformed;
  if (len < 10) return Outcome.Malformed;
  const ll = (b[at + 6]! << 8) | b[at + 7]!;
  if ((ll & 0x8000) === 0 && (ll < 4 || ll > len - 6)) return Outcome.Malformed;
  const cp = (b[at + 8]! << 8) | b[at + 9]!;
  const known =
    type === DssType.Request || type === DssType.RequestNoReply
      ? COMMANDS.has(cp)
      : type === DssType.Reply
        ? cpName.has(cp) || cp === Cp.EXCSATRD || cp === Cp.ACCSECRD
        : OBJECTS.has(cp) || type === DssType.EncryptedObject;
  return known ? len : Outcome.Malformed;
}

/** Split an SQLERRMC into its tokens: Derby separates them with 0x14, DB2 with 0xFF. */
function tokens(s: string): string[] {
  if (s === '') return [];
  return s.split(/[\u0014\u00ff\u009f]/).filter((t) => t !== '');
}

/**
 * An SQLCA (SQLCARD, the SQLCAGRP of a row or of SQLDARD) at the cursor,
 * from its null indicator on; null when the group is null (no SQLCA:
 * success). DRDA Vol. 1, SQLCAGRP:
 *
 * ```
 *   00 | SQLCODE i32 | SQLSTATE 5 | SQLERRPROC 8 | SQLCAXGRP:
 *        00 | SQLERRD1..6 i32 | SQLWARN0..A 11 | SQLRDBNAME vcs | SQLERRMSG_m vcm | SQLERRMSG_s vcs
 *   | SQLDIAGGRP (FF: none)
 * ```
 *
 * Integers follow the sender's TYPDEFNAM; a code that reads absurd one way
 * is read the other way (a capture that starts after ACCRDB).
 */
export function decodeSqlca(c: Cursor, codec: Codec): Sqlca | null | undefined {
  const ind = c.u8();
  if (!c.ok) return undefined;
  if (ind === 0xff) return null;
  const at = c.pos;
  let code = c.int(4, codec.le) as number;
  if (code > 100_000 || code < -100_000) {
    c.pos = at;
    code = c.int(4, !codec.le) as number;
  }
  const sqlState = ddmText(c.take(5));
  const proc = ddmText(c.take(8));
  const errd: number[] = [];
  let msg = '';
  if (c.u8() === 0x00) {
    for (let k = 0; k < 6; k++) errd.push(c.int(4, codec.le) as number);
    c.take(11);
    c.take(c.u16()); // SQLRDBNAME
    const m = c.take(c.u16());
    const s = c.take(c.u16());
    const mb = m.length > 0 ? m : s;
    msg = mb.length === 0 ? '' : decodeCcsid(mb, m.length > 0 ? (codec.mbc ?? codec.sbc) : codec.sbc);
  }
  if (!c.ok && errd.length === 0 && sqlState === '') return undefined;
  return { sqlCode: code, sqlState, proc, errd, tokens: tokens(msg) };
}

/**
 * SQL text of an SQLSTT object: a nullable mixed string then a nullable
 * single-byte string, one of them present. Derby and DB2 at SQLAM 7+ use a
 * 4-byte length; older levels a 2-byte one (the length that fits is taken).
 *
 * ```
 *   00 | len u32 | text... | FF        (mixed present, single-byte null)
 * ```
 */
export function decodeSqlstt(b: Uint8Array, codec: Codec): string | undefined {
  const one = (at: number, cs: string | undefined): [string | undefined, number] => {
    if (at >= b.length) return [undefined, at];
    if (b[at] === 0xff) return [undefined, at + 1];
    const rest = b.length - at - 1;
    const l4 = rest >= 4 ? ((b[at + 1]! << 24) | (b[at + 2]! << 16) | (b[at + 3]! << 8) | b[at + 4]!) >>> 0 : -1;
    const l2 = rest >= 2 ? (b[at + 1]! << 8) | b[at + 2]! : -1;
    if (l4 >= 0 && l4 <= rest - 4) return [decodeCcsid(b.subarray(at + 5, at + 5 + l4), cs), at + 5 + l4];
    if (l2 >= 0 && l2 <= rest - 2) return [decodeCcsid(b.subarray(at + 3, at + 3 + l2), cs), at + 3 + l2];
    // Cut short (a truncated capture): what there is.
    return [decodeCcsid(b.subarray(Math.min(b.length, at + 5)), cs), b.length];
  };
  const [m, next] = one(0, codec.mbc ?? codec.sbc);
  if (m !== undefined && m !== '') return m;
  const [s] = one(next, codec.sbc);
  return s ?? m;
}

/** A package section (PKGNAMCSN): collection, package, consistency token, section number. */
export interface Section {
  /** Map key: every byte of the PKGNAMCSN. */
  readonly key: string;
  /** `collection.package:section`, for `statementId`. */
  readonly name: string;
}

/**
 * PKGNAMCSN: RDBNAM, RDBCOLID, PKGID (18 bytes each, blank padded, or each
 * with a 2-byte length when longer), PKGCNSTKN (8 bytes), PKGSN (u16).
 */
export function decodeSection(b: Uint8Array): Section | undefined {
  if (b.length < 12) return undefined;
  let key = '';
  for (let i = 0; i < b.length; i++) key += String.fromCharCode(b[i]!);
  const sn = (b[b.length - 2]! << 8) | b[b.length - 1]!;
  let col: string;
  let pkg: string;
  if (b.length === 64) {
    col = ddmText(b.subarray(18, 36));
    pkg = ddmText(b.subarray(36, 54));
  } else {
    const c = new Cursor(b);
    c.take(c.u16());
    col = ddmText(c.take(c.u16()));
    pkg = ddmText(c.take(c.u16()));
    if (!c.ok) return { key, name: `section ${sn}` };
  }
  return { key, name: `${col}.${pkg}:${sn}` };
}

/**
 * Column names of an SQLDARD (after its SQLCA), or undefined when the
 * layout is not the one read here. DRDA Vol. 1 at SQLAM 7, as Derby and
 * DB2 send it:
 *
 * ```
 *   SQLDHGRP: 00 | six i16 | SQLRDBNAME vcs | SQLDSCHEMA vcm vcs    (FF: none)
 *   SQLNUM u16, then per column SQLDAGRP:
 *     precision i16 | scale i16 | length i64 | SQLTYPE i16 | CCSID u16
 *     SQLDOPTGRP: 00 | unnamed i16 | SQLNAME vcm vcs | label vcm vcs | comments vcm vcs
 *                 | SQLUDTGRP (FF) | SQLDXGRP: 00 | four i16 | rdbnam vcs | corname, basename,
 *                 schema, name: vcm vcs each                     (FF: none)
 * ```
 */
export function decodeSqldaNames(c: Cursor, codec: Codec): string[] | undefined {
  const vc = (): string => {
    const b = c.take(c.u16());
    return b.length === 0 ? '' : decodeCcsid(b, codec.mbc ?? codec.sbc);
  };
  const pair = (): string => {
    const m = vc();
    const s = vc();
    return m !== '' ? m : s;
  };
  const dh = c.u8();
  if (dh === 0x00) {
    c.take(12);
    vc();
    pair();
  } else if (dh !== 0xff) return undefined;
  // SQLNUM is an integer in the sender's byte order (little-endian from DB2 on x86); string lengths are big-endian.
  const n = c.int(2, codec.le) as number;
  if (!c.ok || n < 0 || n > 4096) return undefined;
  const names: string[] = [];
  for (let i = 0; i < n; i++) {
    c.take(16);
    const opt = c.u8();
    if (opt === 0xff) {
      names.push('');
      continue;
    }
    if (opt !== 0x00) return undefined;
    c.take(2);
    names.push(pair());
    pair();
    pair();
    if (c.u8() !== 0xff) return names.length === n ? names : undefined; // a UDT group: not read further
    const dx = c.u8();
    if (dx === 0x00) {
      c.take(8);
      vc();
      for (let k = 0; k < 4; k++) pair();
    } else if (dx !== 0xff) return undefined;
    if (!c.ok) return undefined;
  }
  return names;
}
