// The Oracle session state machine. TNS packets are framed per direction
// (kit Framer); the TTC messages inside DATA packets carry no lengths of
// their own and one call or answer may span several DATA packets, but the
// conversation is half-duplex: a request runs until the server starts to
// answer, an answer until the client speaks again. So DATA payloads are
// gathered per direction and handed on as one unit when the direction
// turns (or the connection ends).
//
// Records: one `login` per authentication attempt (AUTH phase 1 + 2; a
// listener REFUSE; a CONNECT that never authenticated; a connection that
// turned to native encryption or TLS), one `statement` per SQL call (OALL8,
// OALL7, bundled parse), commit and rollback, with the fetches of a query
// folded into its record, one `logout` per OLOGOFF (or FIN/RST after login).
// The cursor bookkeeping (what a parsed cursor is remembered by, the record
// held open on it, the rows its answers account for) is cursors.ts.
import { decodeText, Direction, type AuditEvent, type CloseReason, type ParamValue, type Timestamp } from '@dbtap/core';
import { BoundedMap, FifoPairing, Framer, KitSession, pickCharset, type Pending } from '../kit/index.js';
import type { SessionContext } from '../plugin.js';
import { ascii, connectInfo, decodeAccept, decodeConnect, decodeRedirect, decodeRefuse, markerKind } from './decoder.js';
import { headerBytes, largeSduVersion, longFormat, plausiblePacket, shortFormat } from './framer.js';
import { type ConnectInfo, Func, MarkerKind, PacketType, TtcType } from './messages.js';
import { authUser, callInts, charsetLabel, decodeAno, fieldVersion, findCall, findOraError, findSql, findStatus, keyValues, protocolAnswer, protocolRequest, readClr, readUb, Rep, type OraError, type StatusFields } from './ttc.js';
import { countBinds, readBinds, reexecBinds, thinExecuteBinds, type BindMeta } from './binds.js';
import { keepRows, MAX_CURSORS, rowsOf, rowText, type Cursor, type Held } from './cursors.js';
import { applyAuthAnswer, applyAuthRequest } from './login.js';
import { bindValue, listenerMessage } from './values.js';

/**
 * Calls waiting for their answer. TTC is strictly one call at a time (the
 * piggy-backed calls travel with the main one), so a new request means the
 * previous answer is not coming: it was lost in a gap, or reassembly
 * delivered it before its request (a gap held one direction back). Keeping
 * only the newest request keeps the pairing aligned in both cases.
 * (Oracle 23ai pipelining, several calls in flight, is not decoded.)
 */
const MAX_PENDING = 1;

type CallKind = 'auth1' | 'auth2' | 'statement' | 'continue' | 'logoff' | 'version' | 'ignored';

interface PendingCall extends Pending {
  kind: CallKind;
  func: number;
  /** The record under construction (statements, login). */
  ev: AuditEvent | undefined;
  cursor: number;
  bytesIn: number;
  /** The call only parsed (and described) its SQL: the execution follows in another call on the cursor. */
  parseOnly: boolean;
  /** Bind metadata the call sent (kept with the cursor for its re-executions). */
  binds: readonly BindMeta[] | undefined;
}

/** OALL8 / OALL7 option bits (node-oracledb constants.js TNS_EXEC_OPTION_*). */
const enum ExecOption {
  Parse = 0x01,
  Execute = 0x20,
  Fetch = 0x40,
}

/** Command names of the calls that become statement records. */
function commandName(func: number): string {
  switch (func) {
    case Func.All8:
      return 'OALL8';
    case Func.All7:
      return 'OALL7';
    case Func.Bundled:
      return 'OBUNDLED';
    case Func.Parse:
      return 'OPARSE';
    case Func.Execute:
      return 'OEXEC';
    case Func.ExecuteFetch:
      return 'OEXECFETCH';
    case Func.Fetch:
      return 'OFETCH';
    case Func.Commit:
      return 'OCOMMIT';
    case Func.Rollback:
      return 'OROLLBACK';
    default:
      return `0x${func.toString(16).padStart(2, '0')}`;
  }
}

/** True when a DATA payload opens a request: a call, a piggy-backed call, a negotiation or ANO. */
function startsRequest(b: Uint8Array): boolean {
  const t = b[0];
  if (t === TtcType.Function || t === TtcType.Piggyback) return b.length >= 3 && findCall(b) !== undefined;
  return t === 0xde && b[1] === 0xad && b[2] === 0xbe && b[3] === 0xef;
}

/** One Oracle connection; see the module comment. */
export class OracleSession extends KitSession {
  private readonly framers: [Framer, Framer];
  private readonly pairing: FifoPairing<PendingCall>;
  private readonly cursors = new BoundedMap<number, Cursor>(MAX_CURSORS);
  // The unit being gathered: DATA payloads of one direction.
  private unitDir = -1;
  // One growing buffer per session: a unit is copied in packet by packet
  // (framer views only live during the call) without an allocation per packet.
  private unitBuf = new Uint8Array(4096);
  private unitBytes = 0;
  private unitTs: Timestamp = 0;
  private unitEnd: Timestamp = 0;
  private unitTruncated = false;
  private unitGap = false;
  // Connection facts.
  private connect: ConnectInfo | undefined;
  private connectTs: Timestamp = 0;
  private pendingConnectData = 0;
  private tnsVersion = 0;
  /** Packets carry 32-bit lengths (after an ACCEPT of version 315+). */
  private long = false;
  private sdu = 0;
  private tdu = 0;
  private clientPlatform: string | undefined;
  /** The client's TTC field version (data type negotiation). */
  private fieldVersion: number | undefined;
  private serverPlatform: string | undefined;
  private charset: string;
  /** Wire length of the last DATA packet of the unit being gathered. */
  private lastWire = 0;
  private rep: Rep = Rep.Var;
  private firstClient = true;
  private loginRecords = 0;
  private redirect: string | undefined;
  /** ANO data integrity (checksumming) chosen by the server, e.g. `ano:3`. */
  private integrity: string | undefined;
  private breaks = 0;
  /** Authentication attempt in progress (from AUTH phase 1 to the answer of phase 2). */
  private login: AuditEvent | undefined;
  /** The last SQL statement, open while later calls continue its cursor (its record goes out when they end). */
  private held: Held | undefined;
  /** Status messages carry the end-to-end sequence number (learnt from the first ORA- answer). */
  private statusSeq = true;
  private readonly seen = new Map<string, number>();

  constructor(ctx: SessionContext) {
    super(ctx, 'oracle');
    const limit = Math.max(1 << 10, ctx.options.maxMessageBytes);
    const mk = (dir: Direction): Framer =>
      new Framer(shortFormat, (m, wire, flags) => this.packet(dir, m, wire, flags), {
        maxMessageBytes: limit,
        resync: (buf, at, end) => this.resync(dir, buf, at, end),
        startSynced: !ctx.midStream,
      });
    this.framers = [mk(Direction.ToServer), mk(Direction.ToClient)];
    this.pairing = new FifoPairing<PendingCall>(MAX_PENDING, (c) => this.finishUnanswered(c));
    this.charset = pickCharset(ctx.options.charset, undefined);
    this.track(this.framers[0], this.framers[1], this.pairing, this.cursors);
    if (ctx.midStream) this.loggedIn = true;
  }

  /**
   * Resynchronising: a packet in the current length format; before any
   * ACCEPT was seen (a capture picked up mid-session) a packet with a 32-bit
   * length also switches both directions to it.
   */
  private resync(dir: Direction, buf: Uint8Array, at: number, end: number): number {
    const client = dir === Direction.ToServer;
    const max = this.sdu > 0 ? Math.max(this.sdu, 2048) : 0xffff;
    const r = plausiblePacket(buf, at, end, this.long, client, max);
    if (r > 0 || this.long || this.tnsVersion > 0) return r;
    const l = plausiblePacket(buf, at, end, true, client, max);
    if (l > 0) this.useLongLengths();
    return l > 0 ? l : r === -1 || l === -1 ? -1 : r;
  }

  private useLongLengths(): void {
    this.long = true;
    this.framers[0].format = longFormat;
    this.framers[1].format = longFormat;
  }

  // ---- KitSession hooks ----------------------------------------------------------

  protected onData(dir: Direction, bytes: Uint8Array): void {
    if (this.firstClient && dir === Direction.ToServer) {
      this.firstClient = false;
      // TCPS: a TLS ClientHello instead of a TNS CONNECT.
      if (bytes.length >= 3 && bytes[0] === 0x16 && bytes[1] === 0x03 && bytes[2]! <= 0x04) {
        const ev = this.records.start('login', this.now);
        ev.command = 'CONNECT';
        ev.tls = true;
        ev.attributes = { encryption: 'tls' };
        this.loginRecords++;
        this.records.emit(ev);
        this.encrypted();
        return;
      }
    }
    this.framers[dir].push(bytes);
  }

  protected onGap(dir: Direction, nbytes: number): void {
    if (this.unitDir === dir) this.unitTruncated = true;
    else this.unitGap = true;
    this.framers[dir].gap(nbytes);
    this.pairing.markTruncated();
  }

  protected onClose(reason: CloseReason): void {
    this.flushUnit();
    for (const c of this.pairing.flush()) this.finishUnanswered(c);
    this.releaseHeld();
    if (this.login !== undefined) {
      // AUTH phase 1 without an answer to phase 2: the outcome was not seen.
      const ev = this.login;
      this.login = undefined;
      this.emitLogin(ev);
    }
    if (this.loginRecords === 0 && this.connect !== undefined) {
      // A CONNECT that never authenticated (a probe, a JDBC ping, a capture cut short).
      const ev = this.loginRecord(this.connectTs, 'CONNECT');
      if (this.redirect !== undefined) (ev.attributes ??= {}).redirect = this.redirect;
      this.emitLogin(ev);
    }
    const out = this.logoutOnClose(reason);
    if (out !== undefined) {
      out.command = 'close';
      this.records.emit(out);
    }
  }

  protected onBug(dir: Direction): void {
    this.framers[dir].loseSync();
    if (this.unitDir === dir) this.dropUnit();
  }

  protected override protocolCounters(): Record<string, number> {
    const out: Record<string, number> = { breaks: this.breaks };
    for (const [k, v] of this.seen) out[k] = v;
    return out;
  }

  private count(name: string): void {
    this.seen.set(name, (this.seen.get(name) ?? 0) + 1);
  }

  // ---- TNS packets -----------------------------------------------------------------

  private packet(dir: Direction, p: Uint8Array, wire: number, flags: number): void {
    this.stats.messages++;
    if (this.framers[dir].takeLostSync()) this.unitGap = true;
    const type = p[4]!;
    switch (type) {
      case PacketType.Connect: {
        if (dir !== Direction.ToServer) break;
        const { info, pendingData } = decodeConnect(p);
        this.connect = info;
        this.connectTs = this.now;
        this.pendingConnectData = pendingData;
        this.applyConnect(info);
        break;
      }
      case PacketType.Accept: {
        if (dir !== Direction.ToClient) break;
        const a = decodeAccept(p);
        this.tnsVersion = a.version;
        this.sdu = a.sdu;
        this.tdu = a.tdu;
        // Every packet after this one has a 32-bit length (both directions).
        if (a.version >= largeSduVersion) this.useLongLengths();
        break;
      }
      case PacketType.Refuse: {
        if (dir !== Direction.ToClient) break;
        const r = decodeRefuse(p);
        const ev = this.loginRecord(this.connectTs || this.now, 'CONNECT');
        this.records.end(ev, this.now);
        const code = r.err !== undefined ? `ORA-${String(r.err).padStart(5, '0')}` : 'REFUSE';
        this.records.error(ev, { code, message: listenerMessage(r.err) ?? r.text });
        (ev.attributes ??= {}).refuse = r.text;
        this.emitLogin(ev);
        break;
      }
      case PacketType.Redirect:
        if (dir === Direction.ToClient) this.redirect = decodeRedirect(p);
        break;
      case PacketType.Marker:
        if (markerKind(p) === MarkerKind.Break) {
          this.breaks++;
          if (dir === Direction.ToServer) this.count('clientBreaks');
        }
        break;
      case PacketType.Data:
        this.dataPacket(dir, p, wire, flags);
        break;
      default:
        // RESEND (the client sends its CONNECT again), CONTROL, ACK, NULL, ABORT: nothing to record.
        break;
    }
  }

  private dataPacket(dir: Direction, p: Uint8Array, wire: number, flags: number): void {
    const payload = p.subarray(Math.min(p.length, headerBytes + 2));
    if (dir === Direction.ToServer && this.pendingConnectData > 0 && this.connect !== undefined) {
      // The connect descriptor did not fit in the CONNECT packet and follows here.
      const desc = ascii(payload, 0, Math.min(payload.length, this.pendingConnectData));
      this.pendingConnectData = 0;
      this.connect = connectInfo(this.connect.version, this.connect.sdu, desc);
      this.applyConnect(this.connect);
      return;
    }
    if (payload.length === 0) return;
    if (this.unitDir === dir && dir === Direction.ToServer && this.lastWire < this.fullPacket() && startsRequest(payload)) {
      // A call longer than the SDU fills every packet but its last: after a
      // short packet, a packet that opens a call is a new request (the
      // server's answer in between was lost or reordered by a gap).
      this.flushUnit();
    }
    if (this.unitDir !== dir) {
      this.flushUnit();
      this.unitDir = dir;
      this.unitTs = this.now;
    }
    this.lastWire = wire;
    const limit = this.ctx.options.maxMessageBytes;
    // Bounded: keep the start of a huge unit (the call and its SQL are at the front).
    const room = Math.min(payload.length, Math.max(0, limit - this.unitBytes));
    if (room < payload.length) {
      this.unitTruncated = true;
      this.stats.skippedBytes += payload.length - room;
    }
    if (room > 0) {
      const need = this.unitBytes + room;
      if (need > this.unitBuf.length) {
        const grown = new Uint8Array(Math.max(need, this.unitBuf.length * 2));
        grown.set(this.unitBuf.subarray(0, this.unitBytes));
        this.unitBuf = grown;
      }
      this.unitBuf.set(room === payload.length ? payload : payload.subarray(0, room), this.unitBytes);
      this.unitBytes = need;
    }
    if ((flags & 1) !== 0 || wire > p.length) this.unitTruncated = true;
    this.unitEnd = this.now;
  }

  /** The size of a full DATA packet (the negotiated SDU; 2048, the old default, before ACCEPT). */
  private fullPacket(): number {
    return this.sdu > 0 ? Math.min(this.sdu, 0xffff) : 2048;
  }

  private dropUnit(): void {
    this.unitBytes = 0;
    if (this.unitBuf.length > 1 << 20) this.unitBuf = new Uint8Array(4096);
    this.unitDir = -1;
    this.unitTruncated = false;
  }

  private flushUnit(): void {
    if (this.unitDir < 0 || this.unitBytes === 0) {
      this.unitDir = -1;
      return;
    }
    const dir = this.unitDir;
    // A view: everything read from it is decoded to strings before the buffer is reused.
    const b = this.unitBuf.subarray(0, this.unitBytes);
    const truncated = this.unitTruncated;
    const gap = this.unitGap;
    const ts = this.unitTs;
    const end = this.unitEnd;
    this.dropUnit();
    this.unitGap = false;
    if (dir === Direction.ToServer) this.request(b, ts, truncated, gap);
    else this.response(b, end, truncated);
  }

  // ---- connection facts ----------------------------------------------------------------

  private applyConnect(c: ConnectInfo): void {
    const w = this.records.who;
    if (c.program !== undefined) w.clientProgram = c.program;
    if (c.host !== undefined) w.clientHost = c.host;
    if (c.osUser !== undefined) w.osUser = c.osUser;
    const db = c.service ?? c.sid;
    if (db !== undefined) w.database = db;
  }

  /** A login record with the connection facts as attributes. */
  private loginRecord(ts: Timestamp, command: string): AuditEvent {
    const ev = this.records.start('login', ts);
    ev.command = command;
    const a: Record<string, string> = {};
    const c = this.connect;
    if (c !== undefined) {
      if (c.service !== undefined) a.serviceName = c.service;
      if (c.sid !== undefined) a.sid = c.sid;
      a.tnsVersion = String(this.tnsVersion || c.version);
    }
    if (this.sdu > 0) a.sdu = String(this.sdu);
    if (this.tdu > 0) a.tdu = String(this.tdu);
    if (this.clientPlatform !== undefined) a.clientPlatform = this.clientPlatform;
    if (this.fieldVersion !== undefined) a.ttcFieldVersion = String(this.fieldVersion);
    if (this.serverPlatform !== undefined) a.serverPlatform = this.serverPlatform;
    if (this.integrity !== undefined) a.integrity = this.integrity;
    ev.attributes = a;
    return ev;
  }

  private emitLogin(ev: AuditEvent): void {
    this.loginRecords++;
    this.records.emit(ev);
  }

  // ---- requests ------------------------------------------------------------------------------

  private request(b: Uint8Array, ts: Timestamp, truncated: boolean, gap: boolean): void {
    if (b.length >= 4 && b[0] === 0xde && b[1] === 0xad && b[2] === 0xbe && b[3] === 0xef) {
      this.count('anoRequests');
      return;
    }
    const t = b[0]!;
    if (t === TtcType.Protocol) {
      this.clientPlatform = protocolRequest(b) ?? this.clientPlatform;
      return;
    }
    if (t === TtcType.DataTypes) {
      this.fieldVersion = fieldVersion(b) ?? this.fieldVersion;
      return;
    }
    const call = findCall(b);
    if (call === undefined) {
      this.count('unknownRequests');
      return;
    }
    const hex = `0x${call.func.toString(16).padStart(2, '0')}`;
    if (t === TtcType.Function) this.count(`call.${hex}`);
    for (const pb of call.piggybacks) this.count(`piggyback.0x${pb.toString(16).padStart(2, '0')}`);
    const pc: PendingCall = { ts, truncated, gapBefore: gap, kind: 'ignored', func: call.func, ev: undefined, cursor: -1, bytesIn: b.length, parseOnly: false, binds: undefined };
    const sqlCalls = call.func === Func.All8 || call.func === Func.All7 || call.func === Func.Bundled || call.func === Func.Parse || call.func === Func.Execute || call.func === Func.ExecuteFetch;
    if (!sqlCalls && call.func !== Func.Fetch) this.releaseHeld();
    switch (call.func) {
      case Func.Auth1:
        this.auth1(b, call.at, pc);
        break;
      case Func.Auth2: {
        pc.kind = 'auth2';
        const kv = keyValues(b, call.at, b.length);
        if (kv !== undefined) {
          this.rep = kv.rep;
          const alter = kv.pairs.get('AUTH_ALTER_SESSION');
          if (this.login === undefined) {
            // Phase 1 was not seen (lost in a gap): the user is in this call too.
            const user = authUser(b, call.at, kv.start);
            if (user !== undefined) this.records.who.user = user;
            this.login = this.loginRecord(ts, 'OAUTH');
            if (gap) this.login.gapBefore = true;
          }
          if (alter !== undefined && alter !== '') (this.login.attributes ??= {}).alterSession = alter;
        }
        break;
      }
      case Func.All8:
      case Func.All7:
      case Func.Bundled:
      case Func.Parse:
      case Func.Execute:
      case Func.ExecuteFetch:
        this.sqlCall(b, call.at, call.func, pc);
        break;
      case Func.Fetch: {
        const ints = callInts(b, call.at, this.rep);
        pc.cursor = ints?.[0] ?? -1;
        if (this.held !== undefined && (pc.cursor === this.held.cursor || this.held.cursor <= 0)) {
          pc.kind = 'continue';
          pc.ev = this.held.ev;
        } else {
          this.releaseHeld();
          pc.kind = 'statement';
          pc.ev = this.records.start('statement', ts);
          pc.ev.command = 'OFETCH';
          const sql = this.cursors.get(pc.cursor)?.sql;
          if (sql !== undefined) this.records.sql(pc.ev, sql);
          pc.ev.statementId = String(pc.cursor);
        }
        break;
      }
      case Func.Commit:
      case Func.Rollback:
        pc.kind = 'statement';
        pc.ev = this.records.start('statement', ts);
        pc.ev.command = commandName(call.func);
        break;
      case Func.Logoff:
        pc.kind = 'logoff';
        break;
      case Func.Version:
        pc.kind = 'version';
        this.count(`ignored.${hex}`);
        break;
      default:
        this.count(`ignored.${hex}`);
        break;
    }
    if (pc.ev !== undefined && pc.kind !== 'continue') {
      // (A continuing call adds its bytes when its answer arrives.)
      pc.ev.bytesIn = b.length;
      if (truncated) pc.ev.truncated = true;
      if (gap) pc.ev.gapBefore = true;
    }
    this.pairing.push(pc);
  }

  private auth1(b: Uint8Array, at: number, pc: PendingCall): void {
    pc.kind = 'auth1';
    if (this.login !== undefined) {
      // The previous attempt never got its answer.
      const old = this.login;
      this.login = undefined;
      this.emitLogin(old);
    }
    const kv = keyValues(b, at, b.length);
    const w = this.records.who;
    if (kv !== undefined) {
      this.rep = kv.rep;
      const user = authUser(b, at, kv.start);
      if (user !== undefined) w.user = user;
      const terminal = applyAuthRequest(kv.pairs, w);
      const ev = this.loginRecord(pc.ts, 'OAUTH');
      if (terminal !== undefined) (ev.attributes ??= {}).terminal = terminal;
      this.login = ev;
    } else {
      this.login = this.loginRecord(pc.ts, 'OAUTH');
    }
    pc.ev = this.login;
  }

  private sqlCall(b: Uint8Array, at: number, func: number, pc: PendingCall): void {
    const ints = callInts(b, at, this.rep);
    // OALL8 / OALL7 / bundled: options, cursor id; OPARSE and the re-executes: cursor id first.
    const cursorFirst = func === Func.Parse || func === Func.Execute || func === Func.ExecuteFetch;
    const options = ints === undefined || cursorFirst ? 0 : ints[0];
    const cursor = ints === undefined ? -1 : cursorFirst ? ints[0] : ints[1];
    pc.cursor = cursor;
    const found = findSql(b, at);
    const held = this.held;
    if (found === undefined && held !== undefined && cursor > 0 && held.cursor === cursor && (held.parseOnly || (!cursorFirst && (options & ExecOption.Execute) === 0))) {
      // The execution (or fetch) of the statement parsed just before: one record.
      held.parseOnly = false;
      pc.kind = 'continue';
      pc.ev = held.ev;
      return;
    }
    this.releaseHeld();
    let sql: string | undefined;
    if (found !== undefined) sql = decodeText(found.bytes, this.charset);
    const known = found === undefined && cursor > 0 ? this.cursors.get(cursor) : undefined;
    if (known !== undefined) sql = known.sql;
    let params: ParamValue[] | undefined;
    if (found !== undefined && sql !== undefined && func === Func.All8) {
      const binds = readBinds(b, found.next, this.rep, countBinds(sql));
      if (binds !== undefined) {
        pc.binds = binds.meta;
        params = this.bindParams(binds.meta, binds.values);
      }
    } else if (found === undefined && sql !== undefined && func === Func.All8 && this.rep === Rep.Var) {
      // A thin driver's full execute of a parsed cursor: the binds come with their metadata, without the SQL.
      const binds = thinExecuteBinds(b, at);
      if (binds !== undefined) {
        pc.binds = binds.meta;
        params = this.bindParams(binds.meta, binds.values);
      }
    } else if (known?.binds !== undefined && cursorFirst && func !== Func.Parse) {
      // A re-execute sends the values only, in the order of the metadata of the call that parsed the cursor.
      pc.binds = known.binds;
      const values = reexecBinds(b, at, this.rep, known.binds);
      if (values !== undefined) params = this.bindParams(known.binds, values);
    }
    pc.kind = 'statement';
    pc.parseOnly = found !== undefined && (func === Func.Bundled || func === Func.Parse || ((func === Func.All8 || func === Func.All7) && (options & ExecOption.Execute) === 0));
    const ev = this.records.start('statement', pc.ts);
    ev.command = commandName(func);
    if (sql !== undefined) this.records.sql(ev, sql);
    if (cursor > 0) ev.statementId = String(cursor);
    if (params !== undefined) ev.params = params;
    pc.ev = ev;
  }

  // ---- responses -------------------------------------------------------------------------------

  private response(b: Uint8Array, end: Timestamp, truncated: boolean): void {
    if (b.length >= 4 && b[0] === 0xde && b[1] === 0xad && b[2] === 0xbe && b[3] === 0xef) {
      this.anoAnswer(b, end);
      return;
    }
    if (b[0] === TtcType.Protocol) {
      const a = protocolAnswer(b);
      if (a !== undefined) {
        this.serverPlatform = a.banner;
        const label = charsetLabel(a.charsetId);
        this.charset = pickCharset(this.ctx.options.charset, label);
      }
      return;
    }
    if (b[0] === TtcType.DataTypes) return;
    const ora = findOraError(b);
    const pc = this.pairing.shift();
    if (pc === undefined) {
      this.pairing.noRequest();
      if (ora !== undefined && this.login !== undefined) {
        // The answer to an AUTH call whose request was lost in a gap.
        const ev = this.login;
        this.login = undefined;
        ev.truncated = true;
        this.failLogin(ev, ora, end);
      }
      return;
    }
    if (truncated) pc.truncated = true;
    const status = findStatus(b, this.rep, ora, this.statusSeq, pc.cursor);
    // The layout an ORA- number or the call's cursor confirmed is kept for the session.
    if (status !== undefined) this.statusSeq = status.withSeq;
    switch (pc.kind) {
      case 'auth1':
        if (ora !== undefined && pc.ev !== undefined && this.login === pc.ev) {
          // Refused at phase 1 (unknown user under some settings, locked account).
          this.login = undefined;
          this.failLogin(pc.ev, ora, end);
        }
        break;
      case 'auth2': {
        const ev = this.login ?? this.loginRecord(pc.ts, 'OAUTH');
        this.login = undefined;
        if (ora !== undefined) this.failLogin(ev, ora, end);
        else this.loginOk(ev, b, end);
        break;
      }
      case 'statement':
        this.statementAnswer(pc, b, end, ora, status);
        break;
      case 'continue': {
        const held = this.held;
        if (held === undefined || held.ev !== pc.ev) break;
        const ev = held.ev;
        this.records.end(ev, end);
        ev.bytesIn = (ev.bytesIn ?? 0) + pc.bytesIn;
        ev.bytesOut = (ev.bytesOut ?? 0) + b.length;
        if (pc.truncated) ev.truncated = true;
        rowsOf(ev, status);
        if (held.columns !== undefined) keepRows(ev, held.columns, b, 0, this.ctx.options.maxRows, this.charset);
        if (ora !== undefined) {
          if (ora.num !== 1403) this.records.error(ev, { code: ora.code, message: ora.message });
          this.releaseHeld();
        }
        break;
      }
      case 'logoff': {
        const ev = this.records.start('logout', pc.ts);
        ev.command = 'OLOGOFF';
        this.records.end(ev, end);
        if (ora !== undefined) this.records.error(ev, { code: ora.code, message: ora.message });
        else ev.status = 'ok';
        this.loggedOut = true;
        this.records.emit(ev);
        break;
      }
      case 'version': {
        // OVERSION answer: 0x08 | ub2 length | CLR banner | ub4 version number.
        if (b[0] === TtcType.Parameter) {
          const n = readUb(b, 1, b.length, this.rep, 2);
          const clr = n === undefined ? undefined : readClr(b, n[1], b.length);
          if (clr?.bytes !== undefined && clr.bytes.length > 0) this.records.who.serverVersion = decodeText(clr.bytes, this.charset).replace(/\0+$/, '');
        }
        break;
      }
      default:
        break;
    }
  }

  private anoAnswer(b: Uint8Array, end: Timestamp): void {
    this.count('anoAnswers');
    const ano = decodeAno(b);
    if (ano === undefined) return;
    const enc = ano.encryption ?? 0;
    const sum = ano.integrity ?? 0;
    // Checksumming alone leaves the calls readable: the login records say so.
    if (sum !== 0) this.integrity = `ano:${sum}`;
    if (enc === 0) return;
    // Native encryption is on: everything after this is opaque.
    const ev = this.loginRecord(this.connectTs || end, 'ANO');
    (ev.attributes ??= {}).encryption = `ano:${enc}`;
    ev.tls = true;
    this.emitLogin(ev);
    this.encrypted();
  }

  private failLogin(ev: AuditEvent, ora: OraError, end: Timestamp): void {
    this.records.end(ev, end);
    this.records.error(ev, { code: ora.code, message: ora.message });
    this.emitLogin(ev);
  }

  private loginOk(ev: AuditEvent, b: Uint8Array, end: Timestamp): void {
    const kv = keyValues(b, 0, b.length);
    const w = this.records.who;
    if (kv !== undefined) applyAuthAnswer(kv.pairs, w, ev);
    if (w.sessionId !== undefined) ev.sessionId = w.sessionId;
    if (w.serverVersion !== undefined) ev.serverVersion = w.serverVersion;
    this.records.end(ev, end);
    ev.status = 'ok';
    this.loggedIn = true;
    this.loggedOut = false;
    this.records.midSession = false;
    this.emitLogin(ev);
  }

  private statementAnswer(pc: PendingCall, b: Uint8Array, end: Timestamp, ora: OraError | undefined, status: StatusFields | undefined): void {
    const ev = pc.ev;
    if (ev === undefined) return;
    this.records.end(ev, end);
    ev.bytesOut = b.length;
    if (pc.truncated) ev.truncated = true;
    const sql = ev.sql;
    if (status !== undefined && status.cursor > 0 && pc.cursor <= 0) {
      pc.cursor = status.cursor;
      ev.statementId = String(status.cursor);
    }
    if (sql !== undefined && pc.cursor > 0) this.cursors.set(pc.cursor, { sql, binds: pc.binds });
    if (ora !== undefined && ora.num !== 1403) {
      this.records.error(ev, { code: ora.code, message: ora.message });
      this.records.emit(ev);
      return;
    }
    ev.status = 'ok';
    rowsOf(ev, status);
    const columns = rowText(ev, b, this.rep, this.ctx.options.maxRows, this.charset);
    if (sql !== undefined && ora === undefined) {
      // Later calls may continue this cursor (execute after parse, fetch more rows).
      this.held = { ev, cursor: pc.cursor, parseOnly: pc.parseOnly, columns };
      return;
    }
    this.records.emit(ev);
  }

  /** Bind values as the record shows them (see `bindValue`). */
  private bindParams(meta: readonly BindMeta[], values: readonly (Uint8Array | undefined)[]): ParamValue[] {
    return values.map((v, i) => bindValue(meta[i]!.type, v, (t) => decodeText(t, meta[i]!.form === 2 ? 'utf-16be' : this.charset)));
  }

  private releaseHeld(): void {
    const ev = this.held;
    if (ev === undefined) return;
    this.held = undefined;
    this.records.emit(ev.ev);
  }

  private finishUnanswered(c: PendingCall): void {
    const ev = c.ev;
    if (ev === undefined || ev === this.login || ev === this.held?.ev) return;
    if (c.truncated) ev.truncated = true;
    this.records.emit(ev);
  }
}
