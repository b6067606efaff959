// The DRDA session: DSSs of both directions -> commands paired with their
// replies by correlation id -> login, statement and logout records.
//
//   client chain:  EXCSAT(1) ACCSEC(2)        |  PRPSQLSTT(1) SQLSTT(1) OPNQRY(2)
//   server chain:  EXCSATRD(1) ACCSECRD(2)    |  SQLDARD(1) OPNQRYRM(2) QRYDSC(2) QRYDTA(2)
//
// Correlation ids number the commands of one chain (they start again at 1
// with the next chain); objects (SQLSTT, SQLDTA) travel in OBJDSSs with
// their command's id. A command's replies are complete when a reply for
// another id arrives or the reply chain ends (a DSS without the chained
// bit); a command the chain leaves unanswered was not executed.
import { toHex, type AuditEvent, type CloseReason, type Direction, type ParamValue } from '@dbtap/core';
import { BoundedMap } from '../kit/bounded-map.js';
import { KeyedPairing, type Pending } from '../kit/pairing.js';
import type { SessionContext } from '../plugin.js';
import { KitSession } from '../kit/session.js';
import { decodeSection, decodeSqlca, decodeSqldaNames, decodeSqlstt, numParam, param, parseDdms, textParam, type Section } from './decoder.js';
import { DssAssembler } from './framer.js';
import { cpName, Cp, DssFlag, DssType, LOGIN_FAILURES, type Ddm, type Dss, type Sqlca } from './messages.js';
import { ccsidCharset, Cursor, ddmText, decodeValue, newCodec, parseDescriptor, type Codec, type Column } from './values.js';

/** A command in flight. */
interface Req extends Pending {
  readonly cp: number;
  readonly corr: number;
  /** Client chain it came in. */
  readonly chain: number;
  readonly section: Section | undefined;
  /** The statement record, for commands that make one. */
  ev: AuditEvent | undefined;
  replied: boolean;
  /** SVRCOD >= 8 reply message, when no SQLCA said more. */
  rmError: string | undefined;
  secchkcd: number | undefined;
  sqlca: Sqlca | undefined;
  accrdbOk: boolean;
  query: Query | undefined;
  /** Further statements of an EXCSQLSET (one record per SQLSTT). */
  more: AuditEvent[];
  bytesIn: number;
  bytesOut: number;
}

/** An open query: its record stays open across CNTQRY fetches until ENDQRYRM or CLSQRY. */
interface Query {
  readonly ev: AuditEvent;
  /** The section it was opened on (its prepare described the columns). */
  readonly key: string | undefined;
  columns: Column[] | undefined;
  carry: Uint8Array | undefined;
  rows: number;
  kept: (string | null)[][];
  /** Rows could not be counted (a type dbtap cannot size). */
  uncounted: boolean;
  done: boolean;
}

/** What a PRPSQLSTT left in a section. */
interface Prepared {
  readonly sql: string;
  readonly name: string;
  /** Chain in which the prepare failed (its executes in that chain are not separate records). */
  failedChain: number;
  /** Result column names (SQLDARD of the prepare). */
  columns?: string[];
}

/** SECCHKCD values (DRDA Vol. 3, SECCHKCD). */
const SECCHKCD: Record<number, string> = {
  0x01: 'security mechanism not supported',
  0x0a: 'local security service non-retryable error',
  0x0b: 'SECTKN missing or invalid',
  0x0e: 'password expired',
  0x0f: 'password invalid',
  0x10: 'password missing',
  0x12: 'user id missing',
  0x13: 'user id or password invalid',
  0x14: 'user id revoked',
  0x15: 'new password invalid',
};

const STATEMENT_COMMANDS: ReadonlySet<number> = new Set([Cp.SQLSTT, Cp.EXCSQLIMM, Cp.EXCSQLSTT, Cp.OPNQRY, Cp.EXCSQLSET, Cp.RDBCMM, Cp.RDBRLLBCK]);
const MAX_CARRY = 1 << 20;
const MAX_IN_FLIGHT = 8192;

/**
 * CRRTKN: network id and LU name (EBCDIC, `.` between them), then an
 * instance id and commit sequence in binary: the text, a dot, the rest in hex.
 */
function correlationToken(b: Uint8Array): string {
  let i = 0;
  while (i < b.length && (b[i]! >= 0xc1 || b[i] === 0x2e || b[i] === 0x4b)) i++;
  const head = b.slice(0, i).map((x) => (x === 0x2e ? 0x4b : x)); // '.' in ASCII or EBCDIC
  const text = ddmText(head);
  return i < b.length ? `${text}.${toHex(b.subarray(i))}` : text;
}

/** SQLERRMC tokens as a message; Derby repeats the SQLSTATE as the last token, which `sqlState` already says. */
function messageOf(ca: Sqlca): string {
  const t = ca.tokens.length > 1 && ca.tokens[ca.tokens.length - 1] === ca.sqlState ? ca.tokens.slice(0, -1) : ca.tokens;
  return t.join(', ');
}

function hex2(n: number): string {
  return `0x${n.toString(16).padStart(2, '0')}`;
}

function rowText(v: ParamValue): string | null {
  if (v === null) return null;
  if (typeof v === 'object') return 'hex' in v ? v.hex : v.text;
  return String(v);
}

/** The server product from a product id (PRDID / SRVRLSLV prefix). */
function product(prdid: string): string | undefined {
  if (prdid.startsWith('CSS')) return 'derby';
  if (prdid.startsWith('SQL')) return 'db2';
  if (prdid.startsWith('DSN')) return 'db2-zos';
  if (prdid.startsWith('QSQ')) return 'db2-i';
  if (prdid.startsWith('ARI')) return 'db2-vm';
  return undefined;
}

/** One DRDA connection. */
export class DrdaSession extends KitSession {
  private readonly dirs: [DssAssembler, DssAssembler];
  private readonly pairing: KeyedPairing<number, Req>;
  private readonly sections = new BoundedMap<string, Prepared>(1024);
  private readonly queries = new BoundedMap<string, Query>(256);
  private readonly codecs: [Codec, Codec] = [newCodec(), newCodec()];
  private cur: Req | undefined = undefined;
  private chain = 0;
  private inChain = false;
  private loginTs: number | undefined = undefined;
  private loginAttrs: Record<string, string> = {};
  private started = false;
  private closing = false;
  private readonly maxRows: number;

  constructor(ctx: SessionContext) {
    super(ctx, 'drda');
    const max = ctx.options.maxMessageBytes;
    this.dirs = [
      new DssAssembler((d) => this.clientDss(d), max, ctx.midStream),
      new DssAssembler((d) => this.serverDss(d), max, ctx.midStream),
    ];
    // A JDBC batch is one chain of as many EXCSQLSTTs as it has rows, all sent before the first reply.
    this.pairing = new KeyedPairing(MAX_IN_FLIGHT, (r) => this.evicted(r));
    this.track(this.dirs[0].framer, this.dirs[1].framer, this.pairing, this.sections, this.queries);
    this.loggedIn = ctx.midStream;
    this.maxRows = ctx.options.maxRows;
    const cs = ctx.options.charset;
    if (cs !== undefined && cs !== '') for (const c of this.codecs) c.sbc = c.mbc = cs;
  }

  // ---- KitSession hooks ------------------------------------------------------

  protected onData(dir: Direction, bytes: Uint8Array): void {
    if (!this.started) {
      this.started = true;
      // TLS from the first byte (Derby -ssl basic, DB2 SSL ports): a handshake record.
      if (bytes.length >= 3 && bytes[0] === 0x16 && bytes[1] === 0x03 && bytes[2]! <= 0x04) {
        const ev = this.records.start('login', this.now);
        ev.tls = true;
        ev.attributes = { note: 'TLS from the first byte: the session is not decoded' };
        this.records.who.tls = true;
        this.records.emit(ev);
        this.encrypted();
        return;
      }
    }
    this.dirs[dir].push(bytes);
  }

  protected onGap(dir: Direction, nbytes: number): void {
    this.dirs[dir].gap(nbytes);
    this.pairing.markTruncated();
    if (dir === 1 && this.cur !== undefined) {
      // Part of the reply being read was not captured: the command is recorded with what arrived.
      this.cur.truncated = true;
      this.finishCur();
    }
  }

  protected onClose(reason: CloseReason): void {
    this.closing = true;
    this.endReplies();
    for (const q of [...this.queries.values()]) this.emitQuery(q);
    this.queries.clear();
    const ev = this.logoutOnClose(reason);
    if (ev !== undefined) this.records.emit(ev);
  }

  protected onBug(dir: Direction): void {
    this.dirs[dir].framer.loseSync();
    this.dirs[dir].reset();
  }

  protected override protocolCounters(): Record<string, number> {
    return { openQueries: this.queries.size, sections: this.sections.size };
  }

  // ---- requests --------------------------------------------------------------

  private clientDss(d: Dss): void {
    this.stats.messages++;
    if (!this.inChain) this.chain++;
    this.inChain = (d.flags & DssFlag.Chained) !== 0;
    const gapBefore = this.dirs[0].framer.takeLostSync();
    if (d.type === DssType.Request || d.type === DssType.RequestNoReply) {
      const cmd = d.objects[0];
      // A command cut by a gap before its code point: as good as lost (its objects still count).
      if (cmd === undefined || (d.truncated && !cpName.has(cmd.cp))) {
        this.stats.malformed++;
        return;
      }
      const params = parseDdms(cmd.body);
      const pk = param(params, Cp.PKGNAMCSN);
      const req = this.request(cmd.cp, d.corr, pk !== undefined ? decodeSection(pk) : undefined, d, gapBefore);
      this.command(req, params);
      if (d.type === DssType.RequestNoReply) this.finish(req);
      else this.pairing.push(d.corr, req);
      return;
    }
    let req = this.pairing.get(d.corr);
    if (req === undefined) {
      // The command DSS was not captured: statement text alone still makes a record.
      if (!d.objects.some((o) => o.cp === Cp.SQLSTT)) return;
      req = this.request(Cp.SQLSTT, d.corr, undefined, d, true);
      req.ev = this.statement(req);
      req.ev.truncated = true;
      req.bytesIn = 0;
      this.pairing.push(d.corr, req);
    }
    req.bytesIn += d.wireBytes;
    if (d.truncated) req.truncated = true;
    for (const o of d.objects) this.requestObject(req, o, d.type === DssType.EncryptedObject);
  }

  private request(cp: number, corr: number, section: Section | undefined, d: Dss, gapBefore: boolean): Req {
    return {
      cp,
      corr,
      chain: this.chain,
      section,
      ts: this.now,
      truncated: d.truncated,
      gapBefore,
      ev: undefined,
      replied: false,
      rmError: undefined,
      secchkcd: undefined,
      sqlca: undefined,
      accrdbOk: false,
      query: undefined,
      more: [],
      bytesIn: d.wireBytes,
      bytesOut: 0,
    };
  }

  /** What a command says on its own. */
  private command(req: Req, params: Ddm[]): void {
    const who = this.records.who;
    switch (req.cp) {
      case Cp.EXCSAT: {
        this.startLogin(true);
        // EXTNAM: JCC pads the program name and appends its product id and a token.
        const ext = textParam(params, Cp.EXTNAM)?.split(/ {2}|[\u0000-\u001f]/)[0];
        if (ext !== undefined && ext !== '') who.clientProgram = ext;
        const host = textParam(params, Cp.SRVNAM);
        if (host !== undefined && host !== '') who.clientHost = host;
        const lvl = textParam(params, Cp.SRVRLSLV);
        if (lvl !== undefined && lvl !== '') who.clientLibrary = lvl;
        const cls = textParam(params, Cp.SRVCLSNM);
        if (cls !== undefined) this.loginAttrs.clientClass = cls;
        return;
      }
      case Cp.ACCSEC:
      case Cp.SECCHK:
      case Cp.ACCRDB: {
        this.startLogin(req.cp === Cp.ACCSEC);
        const mech = numParam(params, Cp.SECMEC);
        if (mech !== undefined) this.loginAttrs.secmec = String(mech);
        const db = textParam(params, Cp.RDBNAM);
        if (db !== undefined && db !== '') {
          // Derby's RDBNAM carries connection attributes after ';' (testdb;create=true).
          const semi = db.indexOf(';');
          who.database = semi >= 0 ? db.slice(0, semi) : db;
          if (semi >= 0) this.loginAttrs.rdbnam = db;
        }
        // SECCHK: the user id is read; PASSWORD and SECTKN never are.
        const user = req.cp === Cp.SECCHK ? textParam(params, Cp.USRID) : undefined;
        if (user !== undefined) who.user = user;
        if (req.cp === Cp.ACCRDB) {
          const prd = textParam(params, Cp.PRDID);
          if (prd !== undefined) this.loginAttrs.clientProduct = prd;
          const tok = param(params, Cp.CRRTKN);
          if (tok !== undefined && tok.length > 0) who.sessionId = correlationToken(tok);
          this.typdef(params, 0);
        }
        return;
      }
      case Cp.EXCSQLIMM:
      case Cp.EXCSQLSET:
      case Cp.RDBCMM:
      case Cp.RDBRLLBCK:
        req.ev = this.statement(req);
        if (req.cp === Cp.RDBCMM) req.ev.sql = 'COMMIT';
        if (req.cp === Cp.RDBRLLBCK) req.ev.sql = 'ROLLBACK';
        return;
      case Cp.EXCSQLSTT:
      case Cp.OPNQRY: {
        const ev = (req.ev = this.statement(req));
        const key = req.section?.key;
        const prep = key !== undefined ? this.sections.get(key) : undefined;
        if (prep !== undefined) this.records.sql(ev, prep.sql);
        if (req.section !== undefined) ev.statementId = req.section.name;
        if (req.cp === Cp.OPNQRY && key !== undefined) {
          const open = this.queries.get(key);
          if (open !== undefined) this.endQuery(key, open);
          req.query = this.newQuery(ev, key);
        }
        return;
      }
      case Cp.CNTQRY:
      case Cp.CLSQRY:
        if (req.section !== undefined) req.query = this.queries.get(req.section.key);
        return;
      default:
        return;
    }
  }

  /** An object travelling with its command (SQLSTT, SQLDTA, EXTDTA, SQLATTR). */
  private requestObject(req: Req, o: Ddm, encrypted: boolean): void {
    if (encrypted || (req.ev !== undefined && req.ev.id !== '')) return;
    const codec = this.codecs[0];
    if (o.cp === Cp.SQLSTT) {
      const sql = decodeSqlstt(o.body, codec);
      if (sql === undefined) return;
      if (req.cp === Cp.PRPSQLSTT && req.section !== undefined) {
        this.sections.set(req.section.key, { sql, name: req.section.name, failedChain: 0 });
      } else if (req.ev !== undefined) {
        if (req.ev.sql === undefined) this.records.sql(req.ev, sql);
        else {
          const ev = this.statement(req);
          this.records.sql(ev, sql);
          req.more.push(ev);
        }
      }
    } else if (o.cp === Cp.OUTOVR && req.query !== undefined) {
      // Output overrides (Derby: LOB columns as locators): a non-zero type replaces the described one.
      const ovr = parseDescriptor(o.body);
      const cols = req.query.columns;
      if (ovr !== undefined && cols !== undefined) ovr.forEach((c, i) => c.type !== 0 && i < cols.length && (cols[i] = c));
    } else if (o.cp === Cp.SQLDTA && req.ev !== undefined) {
      const params = this.sqldta(o.body, codec);
      if (params !== undefined) req.ev.params = params;
    }
  }

  /** Parameter values of an SQLDTA (FDODSC describes, FDODTA holds them). */
  private sqldta(body: Uint8Array, codec: Codec): ParamValue[] | undefined {
    const parts = parseDdms(body);
    const dsc = param(parts, Cp.FDODSC);
    const dta = param(parts, Cp.FDODTA);
    if (dsc === undefined || dta === undefined) return undefined;
    const cols = parseDescriptor(dsc);
    if (cols === undefined) return undefined;
    const c = new Cursor(dta);
    c.u8(); // the row's group indicator
    const out: ParamValue[] = [];
    for (const col of cols) {
      const v = decodeValue(c, col, codec);
      if (v === undefined || !c.ok) break;
      out.push(v);
    }
    return out;
  }

  private newQuery(ev: AuditEvent, key: string | undefined): Query {
    return { ev, key, columns: undefined, carry: undefined, rows: 0, kept: [], uncounted: false, done: false };
  }

  private statement(req: Req): AuditEvent {
    const ev = this.records.start('statement', req.ts);
    ev.command = cpName.get(req.cp) ?? hex2(req.cp);
    if (req.gapBefore) ev.gapBefore = true;
    return ev;
  }

  // ---- replies ---------------------------------------------------------------

  private serverDss(d: Dss): void {
    this.stats.messages++;
    if (this.cur !== undefined && this.cur.corr !== d.corr) this.finishCur();
    if (this.cur === undefined) {
      const req = this.pairing.take(d.corr);
      if (req !== undefined) this.cur = req;
    }
    const req = this.cur;
    if (req !== undefined) {
      req.replied = true;
      req.bytesOut += d.wireBytes;
      if (d.truncated) req.truncated = true;
      for (const o of d.objects) this.reply(req, o);
    }
    if ((d.flags & DssFlag.Chained) === 0) this.endReplies();
  }

  /** The reply chain ended: the current command is answered, any other in flight was not. */
  private endReplies(): void {
    this.finishCur();
    for (const r of this.pairing.flush()) this.unanswered(r);
  }

  private finishCur(): void {
    const r = this.cur;
    this.cur = undefined;
    if (r !== undefined) this.finish(r);
  }

  private reply(req: Req, o: Ddm): void {
    const codec = this.codecs[1];
    switch (o.cp) {
      case Cp.SQLCARD: {
        const ca = decodeSqlca(new Cursor(o.body), codec);
        if (ca) this.sqlca(req, ca);
        return;
      }
      case Cp.SQLDARD: {
        // The SQLCA, then the description of the statement's result columns.
        const c = new Cursor(o.body);
        const ca = decodeSqlca(c, codec);
        if (ca) this.sqlca(req, ca);
        if (ca === undefined || c.u8() !== 0xff) return; // SQLDIAGGRP present: not read
        const names = decodeSqldaNames(c, codec);
        if (names === undefined || names.length === 0) return;
        const prep = req.section !== undefined ? this.sections.get(req.section.key) : undefined;
        if (prep !== undefined && req.cp === Cp.PRPSQLSTT) prep.columns = names;
        if (req.ev !== undefined && req.ev.id === '') req.ev.columns = names;
        return;
      }
      case Cp.SQLDTARD: {
        const dta = param(parseDdms(o.body), Cp.FDODTA);
        if (dta === undefined) return;
        const c = new Cursor(dta);
        if (dta[0] === 0x00 && dta.length > 1 && (dta[1] === 0x00 || dta[1] === 0xff)) c.u8(); // group indicator before the SQLCAGRP
        const ca = decodeSqlca(c, codec);
        if (ca) this.sqlca(req, ca);
        return;
      }
      case Cp.EXCSATRD: {
        const p = parseDdms(o.body);
        const lvl = textParam(p, Cp.SRVRLSLV);
        if (lvl !== undefined && lvl !== '') this.serverProduct(lvl, true);
        const cls = textParam(p, Cp.SRVCLSNM);
        if (cls !== undefined) this.loginAttrs.serverClass = cls;
        const name = textParam(p, Cp.SRVNAM);
        if (name !== undefined) this.loginAttrs.serverName = name;
        return;
      }
      case Cp.ACCSECRD:
      case Cp.SECCHKRM: {
        const p = parseDdms(o.body);
        const code = numParam(p, Cp.SECCHKCD);
        if (code !== undefined && code !== 0) req.secchkcd = code;
        if (o.cp === Cp.SECCHKRM) this.rm(req, o.cp, p);
        return;
      }
      case Cp.ACCRDBRM: {
        const p = parseDdms(o.body);
        const prd = textParam(p, Cp.PRDID);
        if (prd !== undefined && prd !== '') {
          this.loginAttrs.serverProduct = prd;
          this.serverProduct(prd, this.records.who.serverVersion === undefined);
        }
        this.typdef(p, 1);
        req.accrdbOk = (numParam(p, Cp.SVRCOD) ?? 0) < 8;
        return;
      }
      case Cp.OPNQRYRM:
        // A CALL's result set: its rows count for the EXCSQLSTT.
        if (req.query === undefined && req.ev !== undefined && req.cp === Cp.EXCSQLSTT) req.query = this.newQuery(req.ev, undefined);
        this.rm(req, o.cp, parseDdms(o.body));
        return;
      case Cp.QRYDSC: {
        const q = req.query;
        if (q !== undefined) q.columns = parseDescriptor(o.body) ?? undefined;
        return;
      }
      case Cp.QRYDTA:
        if (req.query !== undefined) this.rows(req.query, o.body);
        return;
      case Cp.ENDQRYRM:
        if (req.query !== undefined) req.query.done = true;
        this.rm(req, o.cp, parseDdms(o.body));
        return;
      default:
        if (cpName.has(o.cp)) this.rm(req, o.cp, parseDdms(o.body));
    }
  }

  /** The server's product from its release level or product id (`CSS10140` Derby, `SQL11010` DB2 LUW, ...). */
  private serverProduct(id: string, asVersion: boolean): void {
    const who = this.records.who;
    if (asVersion) who.serverVersion = id;
    const prod = product(id);
    if (prod !== undefined) who.dbProduct = prod;
  }

  /** A reply message: SVRCOD 8 (error) and above fail the command unless an SQLCA says more. */
  private rm(req: Req, cp: number, params: Ddm[]): void {
    const svrcod = numParam(params, Cp.SVRCOD) ?? 0;
    if (svrcod >= 8 && req.rmError === undefined) req.rmError = cpName.get(cp) ?? hex2(cp);
    if (LOGIN_FAILURES.has(cp)) req.rmError = cpName.get(cp) ?? hex2(cp);
  }

  private sqlca(req: Req, ca: Sqlca): void {
    if (req.sqlca === undefined || (ca.sqlCode < 0 && req.sqlca.sqlCode >= 0)) req.sqlca = ca;
  }

  /** TYPDEFNAM (byte order) and TYPDEFOVR (CCSIDs) of one side. */
  private typdef(params: Ddm[], dir: 0 | 1): void {
    const c = this.codecs[dir];
    const name = textParam(params, Cp.TYPDEFNAM);
    if (name !== undefined) c.le = name === 'QTDSQLX86';
    const ovr = param(params, Cp.TYPDEFOVR);
    if (ovr === undefined || (this.ctx.options.charset ?? '') !== '') return;
    const p = parseDdms(ovr);
    const sbc = numParam(p, Cp.CCSIDSBC);
    const mbc = numParam(p, Cp.CCSIDMBC);
    const dbc = numParam(p, Cp.CCSIDDBC);
    if (sbc !== undefined) c.sbc = ccsidCharset(sbc);
    if (mbc !== undefined) c.mbc = ccsidCharset(mbc);
    if (dbc !== undefined) c.dbc = ccsidCharset(dbc);
    const ccsids = [sbc, mbc, dbc].map((x) => x ?? '-').join('/');
    this.loginAttrs[dir === 0 ? 'clientCcsids' : 'serverCcsids'] = ccsids;
  }

  /**
   * Rows of a QRYDTA, by the query's descriptor. Each row:
   *
   * ```
   *   FF (no SQLCA) | 00 (data group present) | column values...
   *   00 SQLCA (SQLCODE 100: end of data)
   * ```
   *
   * A row cut by the block end continues in the next QRYDTA (kept, bounded).
   */
  private rows(q: Query, body: Uint8Array): void {
    if (q.uncounted || q.done || q.columns === undefined) {
      if (q.columns === undefined) q.uncounted = true;
      return;
    }
    let buf = body;
    if (q.carry !== undefined) {
      buf = new Uint8Array(q.carry.length + body.length);
      buf.set(q.carry, 0);
      buf.set(body, q.carry.length);
      q.carry = undefined;
    }
    const codec = this.codecs[1];
    const c = new Cursor(buf);
    while (c.pos < c.end) {
      const start = c.pos;
      const ca = decodeSqlca(c, codec);
      if (ca === undefined || !c.ok) {
        this.keep(q, buf, start);
        return;
      }
      if (ca !== null) {
        if (ca.sqlCode < 0) this.records.error(q.ev, { code: ca.sqlCode, sqlState: ca.sqlState, message: messageOf(ca) });
        if (ca.sqlCode === 100 || ca.sqlCode < 0) {
          q.done = true;
          return;
        }
        // A warning SQLCA: the SQLDIAGGRP indicator, then the row.
        if (c.u8() !== 0xff) {
          q.uncounted = true;
          return;
        }
      }
      if (c.u8() === 0xff) continue; // no data group
      const row: (string | null)[] = [];
      let sized = true;
      for (const col of q.columns) {
        const v = decodeValue(c, col, codec);
        if (v === undefined) {
          sized = false;
          break;
        }
        if (q.kept.length < this.maxRows) row.push(rowText(v));
      }
      if (!c.ok) {
        this.keep(q, buf, start);
        return;
      }
      if (!sized) {
        q.uncounted = true;
        return;
      }
      q.rows++;
      if (q.kept.length < this.maxRows) q.kept.push(row);
    }
  }

  private keep(q: Query, buf: Uint8Array, from: number): void {
    if (buf.length - from > MAX_CARRY) {
      q.uncounted = true;
      return;
    }
    q.carry = buf.slice(from);
  }

  // ---- completion ------------------------------------------------------------

  /** A command whose replies are all in. */
  private finish(req: Req): void {
    switch (req.cp) {
      case Cp.ACCSEC:
        if (req.secchkcd !== undefined) this.loginFailed(req, `SECCHKCD ${hex2(req.secchkcd)}`, SECCHKCD[req.secchkcd]);
        return;
      case Cp.SECCHK:
        if (req.secchkcd !== undefined) this.loginFailed(req, `SECCHKCD ${hex2(req.secchkcd)}`, SECCHKCD[req.secchkcd]);
        else if (req.rmError !== undefined) this.loginFailed(req, req.rmError, undefined);
        return;
      case Cp.ACCRDB:
        if (!req.replied) return;
        if (req.accrdbOk && req.rmError === undefined && (req.sqlca === undefined || req.sqlca.sqlCode >= 0)) this.loginOk(req);
        else this.loginFailed(req, req.rmError ?? (req.sqlca !== undefined ? String(req.sqlca.sqlCode) : 'ACCRDB'), undefined);
        return;
      case Cp.PRPSQLSTT:
        if (req.sqlca !== undefined && req.sqlca.sqlCode < 0 && req.section !== undefined) {
          const prep = this.sections.get(req.section.key);
          if (prep === undefined) return;
          prep.failedChain = req.chain;
          const ev = this.statement(req);
          this.records.sql(ev, prep.sql);
          ev.statementId = prep.name;
          this.result(req, ev);
          this.records.emit(ev);
        }
        return;
      case Cp.CNTQRY:
      case Cp.CLSQRY: {
        const q = req.query;
        if (q === undefined || req.section === undefined) return;
        if (req.truncated) q.ev.truncated = true;
        q.ev.bytesIn = (q.ev.bytesIn ?? 0) + req.bytesIn;
        q.ev.bytesOut = (q.ev.bytesOut ?? 0) + req.bytesOut;
        if (req.sqlca !== undefined && req.sqlca.sqlCode < 0) this.result(req, q.ev);
        if (q.done || req.cp === Cp.CLSQRY || q.ev.status === 'error') this.endQuery(req.section.key, q);
        return;
      }
      default:
    }
    const ev = req.ev;
    if (ev === undefined) return;
    if (this.suppressed(req)) return;
    this.result(req, ev);
    const q = req.query;
    if (req.cp === Cp.OPNQRY && q !== undefined && req.section !== undefined && ev.status !== 'error' && !q.done) {
      this.queries.set(req.section.key, q); // open: the record waits for its fetches
      return;
    }
    if (q !== undefined) this.fillQuery(q);
    this.records.emit(ev);
    for (const more of req.more) {
      this.result(req, more);
      this.records.emit(more);
    }
  }

  /** An execute of a section whose prepare failed in the same chain: the prepare's record says it. */
  private suppressed(req: Req): boolean {
    if (req.section === undefined || (req.cp !== Cp.OPNQRY && req.cp !== Cp.EXCSQLSTT)) return false;
    const prep = this.sections.get(req.section.key);
    return prep !== undefined && prep.failedChain === req.chain && (req.rmError !== undefined || (req.sqlca?.sqlCode ?? 0) < 0);
  }

  /** The result fields of a reply onto a record. */
  private result(req: Req, ev: AuditEvent): void {
    this.records.end(ev, this.now);
    ev.bytesIn = req.bytesIn;
    ev.bytesOut = req.bytesOut;
    if (req.truncated) ev.truncated = true;
    const ca = req.sqlca;
    if (ca !== undefined && ca.sqlCode < 0) {
      this.records.error(ev, { code: ca.sqlCode, sqlState: ca.sqlState, message: messageOf(ca) });
      if (req.rmError !== undefined) ev.attributes = { ...ev.attributes, replyMessage: req.rmError };
      return;
    }
    if (req.rmError !== undefined) {
      this.records.error(ev, { code: req.rmError });
      return;
    }
    if (!req.replied) return;
    ev.status = 'ok';
    if (ca !== undefined) {
      if (ca.sqlCode > 0 && ca.sqlCode !== 100) ev.warnings = 1;
      if ((req.cp === Cp.EXCSQLIMM || req.cp === Cp.EXCSQLSTT) && ca.errd.length >= 3 && ca.errd[2]! >= 0) ev.affectedRows = ca.errd[2]!;
    }
  }

  private fillQuery(q: Query): void {
    const names = q.key !== undefined ? this.sections.get(q.key)?.columns : undefined;
    if (names !== undefined && q.ev.columns === undefined) q.ev.columns = names;
    if (!q.uncounted && q.columns !== undefined) q.ev.rowsReturned = q.rows;
    if (this.maxRows > 0 && q.kept.length > 0) q.ev.rows = q.kept;
  }

  private endQuery(key: string, q: Query): void {
    this.queries.delete(key);
    this.emitQuery(q);
  }

  private emitQuery(q: Query): void {
    if (q.ev.id !== '') return;
    this.fillQuery(q);
    this.records.emit(q.ev);
  }

  /** A command pushed out of the bound before its reply: recorded, with status unknown. */
  private evicted(req: Req): void {
    if (req.ev === undefined || !STATEMENT_COMMANDS.has(req.cp)) return;
    req.ev.bytesIn = req.bytesIn;
    for (const ev of [req.ev, ...req.more]) this.records.emit(ev);
  }

  /** A command the server never answered (the chain stopped, or the reply was not captured). */
  private unanswered(req: Req): void {
    if (!STATEMENT_COMMANDS.has(req.cp) || req.ev === undefined) return;
    if (req.replied) {
      this.finish(req);
      return;
    }
    // A statement whose reply was not captured (or never came before the end): recorded with status unknown.
    if (this.closing || req.truncated || req.gapBefore || !this.dirs[1].framer.synced) {
      const ev = req.ev;
      ev.truncated = true;
      ev.bytesIn = req.bytesIn;
      this.records.emit(ev);
    }
  }

  // ---- login -----------------------------------------------------------------

  private startLogin(fresh: boolean): void {
    if (this.loginTs === undefined || (fresh && this.loginTs < 0)) {
      this.loginTs = this.now;
      this.records.midSession = false;
      this.loginAttrs = { ...this.loginAttrs };
    }
  }

  private loginRecord(req: Req): AuditEvent {
    const ev = this.records.start('login', this.loginTs !== undefined && this.loginTs >= 0 ? this.loginTs : req.ts);
    this.loginTs = -1; // a further EXCSAT/ACCSEC starts another attempt
    this.records.end(ev, this.now);
    if (Object.keys(this.loginAttrs).length > 0) ev.attributes = { ...this.loginAttrs };
    if (req.gapBefore) ev.gapBefore = true;
    if (req.truncated) ev.truncated = true;
    return ev;
  }

  private loginOk(req: Req): void {
    const ev = this.loginRecord(req);
    ev.status = 'ok';
    if (req.sqlca !== undefined && req.sqlca.sqlCode > 0) ev.warnings = 1;
    this.loggedIn = true;
    this.loggedOut = false;
    this.records.emit(ev);
  }

  private loginFailed(req: Req, code: string, text: string | undefined): void {
    const ev = this.loginRecord(req);
    const ca = req.sqlca;
    // Derby's client raises SQLSTATE 08004 for a refused connection, DB2's SQL30082N 08001.
    const derived = this.records.who.dbProduct === 'derby' ? '08004' : '08001';
    const message = ca !== undefined && ca.tokens.length > 0 ? messageOf(ca) : text !== undefined ? `security check failed: ${text}` : undefined;
    this.records.error(ev, {
      code,
      sqlState: ca !== undefined && ca.sqlState !== '' ? ca.sqlState : derived,
      ...(message !== undefined ? { message } : {}),
    });
    this.records.emit(ev);
  }
}


