// The TDS session: frames -> (per MARS session) messages -> records.
//
// The stream is framed once (TDS packets, SMP packets, TLS records); SMP DATA
// payloads feed a per-SID packet framer, so every channel (the plain stream,
// or one MARS session) joins its own request messages and parses its own
// response tokens. Requests pair with responses per channel (KeyedPairing,
// key = SID, -1 for the plain stream). The login state follows the messages
// seen rather than a fixed sequence, so a lost PRELOGIN answer or a capture
// picked up mid-session still decodes what follows.
import { Direction, decodeText, type AuditEvent, type CloseReason } from '@dbtap/core';
import { BoundedMap, Framer, FrameFlag, KeyedPairing, KitSession, pickCharset, type Pending } from '../kit/index.js';
import type { SessionContext } from '../plugin.js';
import { decodeLogin5, decodeLogin7, decodePreLogin, decodeRpc, decodeSqlBatch, decodeTransactionManager, skipAllHeaders } from './decoder.js';
import { HEADER, MsgFlag, PacketJoiner, SMP_HEADER, isTlsRecord, packetFormat, resyncAt, streamFormat } from './framer.js';
import { Encrypt, EnvType, PacketStatus, PacketType, SmpFlag, tdsVersionName, type PreLogin, type RpcCall } from './messages.js';
import { Dialect, ResponseAcc, TokenParser, type ResponseHooks } from './tokens.js';

/** A request waiting for its response. */
interface Req extends Pending {
  readonly ev: AuditEvent;
  /** Further records answered by the same response (chained RPC calls). */
  readonly more: AuditEvent[];
  readonly login: boolean;
  /** The procedure whose handle the response returns (sp_prepare...), with its SQL. */
  readonly prepares?: string;
  bytesOut: number;
  cancelled: boolean;
}

/** One stream of TDS packets: the connection itself, or one MARS (SMP) session. */
class Channel {
  readonly joiner: PacketJoiner;
  readonly parser: TokenParser;
  /** The PRELOGIN answer is expected next (it is an option list, not tokens). */
  preLogin = false;
  readonly serverJoiner: PacketJoiner;
  /** An attention was sent and its acknowledgement (DONE with ATTN) not yet seen. */
  attention = false;
  /** Framers of an SMP session's two directions (absent for the plain stream). */
  framers: [Framer, Framer] | undefined;
  orphan = new ResponseAcc();

  constructor(
    readonly id: number,
    max: number,
    parser: TokenParser,
  ) {
    this.joiner = new PacketJoiner(max);
    this.serverJoiner = new PacketJoiner(64 << 10);
    this.parser = parser;
  }
}

const enum Crypt {
  Unknown,
  None,
  LoginOnly,
  Full,
}

/** Procedures whose parameters carry a statement: index of the SQL parameter, first bound value, whether they return a handle. */
const sqlProcs: Record<string, [sqlAt: number, valuesAt: number, returnsHandle: boolean]> = {
  sp_executesql: [0, 2, false],
  sp_prepare: [2, 99, true],
  sp_prepexec: [2, 3, true],
  sp_cursoropen: [1, 6, false],
  sp_cursorprepare: [2, 99, true],
  sp_cursorprepexec: [3, 7, true],
  sp_prepexecrpc: [1, 2, true],
};

/** The TDS session; see the module comment. */
export class TdsSession extends KitSession {
  private readonly framers: [Framer, Framer];
  private readonly main: Channel;
  private readonly channels: BoundedMap<number, Channel>;
  private readonly pairing: KeyedPairing<number, Req>;
  private readonly prepared = new BoundedMap<string, string>(1024);
  private dialect = Dialect.Tds72;
  private charset5 = 'latin1';
  private crypt = Crypt.Unknown;
  private clientPre: PreLogin | undefined;
  private serverPre: PreLogin | undefined;
  private loginEncrypted = false;
  private gapNext = false;
  private spid = 0;
  private lastBulk: string | undefined;
  private readonly max: number;
  private readonly hooks: ResponseHooks;
  private tlsRecords = 0;
  private firstClient = true;

  constructor(ctx: SessionContext) {
    super(ctx, 'tds');
    const max = Math.max(1024, ctx.options.maxMessageBytes);
    this.max = max;
    this.hooks = {
      loginAck: (product, version, tdsVersion, ok) => this.loginAck(product, version, tdsVersion, ok),
      envChange: (type, nv, ov) => this.envChange(type, nv, ov),
    };
    const opts = { maxMessageBytes: Math.max(max, 1 << 16) + SMP_HEADER, resync: resyncAt, startSynced: !ctx.midStream };
    this.framers = [new Framer(streamFormat, (m, w, f) => this.frame(Direction.ToServer, m, w, f), opts), new Framer(streamFormat, (m, w, f) => this.frame(Direction.ToClient, m, w, f), opts)];
    this.main = this.newChannel(-1);
    this.channels = new BoundedMap(64);
    this.pairing = new KeyedPairing(64, (r) => this.emitReq(r, true));
    this.track(this.framers[0], this.framers[1], this.pairing, this.prepared);
    // SQL Server until a TDS 5.0 message says otherwise (a mid-session capture may never show a login).
    this.records.who.dbProduct = 'mssql';
  }

  private newChannel(id: number): Channel {
    const charset = this.ctx.options.charset ?? (this.dialect === Dialect.Tds50 ? this.charset5 : 'utf-8');
    return new Channel(id, this.max, new TokenParser(this.dialect, this.ctx.options.maxRows, this.max, charset, this.hooks));
  }

  // ---- stream ----------------------------------------------------------------

  protected onData(dir: Direction, bytes: Uint8Array): void {
    const first = dir === Direction.ToServer && this.firstClient;
    if (dir === Direction.ToServer) this.firstClient = false;
    if (first && bytes[0] === 0x16 && bytes[1] === 0x03 && !this.ctx.midStream) {
      // TDS 8.0 (strict encryption): TLS from the first byte, TDS inside it.
      this.tlsSession('8.0');
      return;
    }
    this.framers[dir].push(bytes);
  }

  protected onGap(dir: Direction, nbytes: number): void {
    const synced = this.framers[dir].gap(nbytes);
    if (!synced) this.lostSync(dir);
  }

  protected onBug(dir: Direction): void {
    this.framers[dir].loseSync();
    this.lostSync(dir);
  }

  private lostSync(dir: Direction): void {
    this.gapNext = true;
    for (const ch of [this.main, ...this.channels.values()]) {
      if (dir === Direction.ToServer) ch.joiner.reset();
      else {
        ch.parser.reset();
        ch.serverJoiner.reset();
      }
    }
    this.pairing.markTruncated();
  }

  protected onClose(reason: CloseReason): void {
    for (const r of this.pairing.flush()) this.emitReq(r, true);
    const ev = this.logoutOnClose(reason);
    if (ev !== undefined) this.records.emit(ev);
  }

  protected override protocolCounters(): Record<string, number> {
    return { marsSessions: this.channels.size, tlsRecords: this.tlsRecords };
  }

  /** One frame of the top-level stream. */
  private frame(dir: Direction, m: Uint8Array, wire: number, flags: number): void {
    this.stats.messages++;
    const truncated = (flags & FrameFlag.Truncated) !== 0;
    if (m[0] === PacketType.Smp) {
      this.smp(dir, m, truncated);
      return;
    }
    if (isTlsRecord(m, 0)) {
      this.tlsRecord(dir);
      return;
    }
    this.packet(this.main, dir, m, truncated, wire);
  }

  /** SMP ([MC-SMP] 2.2): SYN opens a session, DATA carries its TDS packets, FIN ends it. */
  private smp(dir: Direction, m: Uint8Array, truncated: boolean): void {
    const flags = m[1]!;
    const sid = m[2]! | (m[3]! << 8);
    let ch = this.channels.get(sid);
    if (flags & SmpFlag.Fin) {
      if (ch !== undefined) {
        const r = this.pairing.get(sid);
        if (r !== undefined) {
          this.pairing.take(sid);
          this.emitReq(r, true);
        }
        this.channels.delete(sid);
      }
      return;
    }
    if ((flags & SmpFlag.Data) === 0 || m.length <= SMP_HEADER) return;
    if (ch === undefined) {
      const c = this.newChannel(sid);
      const opts = { maxMessageBytes: Math.max(this.max, 1 << 16), resync: resyncAt };
      c.framers = [new Framer(packetFormat, (p, w, f) => this.packet(c, Direction.ToServer, p, (f & FrameFlag.Truncated) !== 0, w), opts), new Framer(packetFormat, (p, w, f) => this.packet(c, Direction.ToClient, p, (f & FrameFlag.Truncated) !== 0, w), opts)];
      this.channels.set(sid, c);
      ch = c;
    }
    const f = ch.framers![dir];
    f.push(m.subarray(SMP_HEADER));
    if (truncated) f.loseSync();
  }

  private tlsRecord(dir: Direction): void {
    this.tlsRecords++;
    if (dir === Direction.ToClient && this.crypt !== Crypt.LoginOnly) {
      // The server speaks TLS outside PRELOGIN packets: the whole session is encrypted.
      this.tlsSession(undefined);
      return;
    }
    if (dir === Direction.ToServer && !this.loginEncrypted && this.crypt !== Crypt.None) {
      // The LOGIN7 inside TLS (ENCRYPT_OFF: only the login is encrypted).
      this.loginEncrypted = true;
      const ev = this.loginRecord();
      ev.command = 'LOGIN7';
      ev.attributes = { ...ev.attributes, loginEncrypted: 'true' };
      this.push(this.main, ev, true, undefined, 0);
    }
  }

  /** Everything from here on is TLS: a login record with what was visible, then no more decoding. */
  private tlsSession(tdsVersion: string | undefined): void {
    if (this.loggedOut) return;
    const ev = this.loginRecord();
    ev.command = tdsVersion === '8.0' ? 'TLS' : 'PRELOGIN';
    ev.tls = true;
    if (tdsVersion !== undefined) ev.attributes = { ...ev.attributes, tdsVersion };
    this.records.emit(ev);
    this.loggedOut = true;
    this.encrypted();
  }

  private loginRecord(): AuditEvent {
    const ev = this.records.start('login', this.now);
    const a: Record<string, string> = {};
    const c = this.clientPre;
    const s = this.serverPre;
    if (c?.version !== undefined) a.clientVersion = c.version;
    if (c?.encryption !== undefined) a.encryption = encryptName(c.encryption);
    if (s?.encryption !== undefined) a.serverEncryption = encryptName(s.encryption);
    if (s?.version !== undefined) a.preLoginServerVersion = s.version;
    if (c?.instance !== undefined && c.instance !== '') a.instance = c.instance;
    if (c?.mars !== undefined) a.mars = String(c.mars);
    if (c?.traceId !== undefined) a.traceId = c.traceId;
    if (c?.threadId !== undefined) a.threadId = String(c.threadId);
    if (Object.keys(a).length > 0) ev.attributes = a;
    return ev;
  }

  // ---- packets -----------------------------------------------------------------

  private packet(ch: Channel, dir: Direction, p: Uint8Array, truncated: boolean, wire: number): void {
    if (p.length < HEADER) return;
    if (dir === Direction.ToServer) {
      ch.joiner.add(p, truncated, (type, status, payload, flags, w) => this.request(ch, type, status, payload, flags, w));
      return;
    }
    if (p[0] !== PacketType.Tabular) return;
    const eom = (p[1]! & PacketStatus.Eom) !== 0;
    const spid = (p[4]! << 8) | p[5]!;
    if (spid !== 0 && this.spid === 0) {
      this.spid = spid;
      this.records.who.sessionId = String(spid);
      const r = this.pairing.get(ch.id);
      if (r !== undefined) r.ev.sessionId = String(spid);
    }
    if (ch.preLogin) {
      ch.serverJoiner.add(p, truncated, (_t, _s, payload) => this.preLoginAnswer(ch, payload));
      return;
    }
    const req = this.pairing.get(ch.id);
    if (req === undefined) {
      // A response without its request (mid-session, or an attention acknowledgement): parsed for its state.
      if (truncated) ch.parser.abandon(ch.orphan, eom);
      else ch.parser.push(p.subarray(HEADER), eom, ch.orphan);
      if (eom) {
        if (!ch.attention || !ch.orphan.attention) this.pairing.take(ch.id);
        if (ch.orphan.attention) ch.attention = false;
        ch.orphan = new ResponseAcc();
        ch.parser.reset();
      }
      return;
    }
    req.bytesOut += wire;
    const acc = this.acc(req);
    if (truncated) {
      req.truncated = true;
      ch.parser.abandon(acc, eom);
    } else ch.parser.push(p.subarray(HEADER), eom, acc);
    if (!eom) return;
    ch.parser.reset();
    if (acc.attention) ch.attention = false;
    this.pairing.take(ch.id);
    this.finish(req, acc);
  }

  private readonly accs = new WeakMap<Req, ResponseAcc>();
  private acc(r: Req): ResponseAcc {
    let a = this.accs.get(r);
    if (a === undefined) {
      a = new ResponseAcc();
      this.accs.set(r, a);
    }
    return a;
  }

  private preLoginAnswer(ch: Channel, payload: Uint8Array): void {
    ch.preLogin = false;
    const pre = decodePreLogin(payload);
    const r = this.pairing.get(ch.id);
    if (r !== undefined && !r.login) this.pairing.take(ch.id);
    if (pre === undefined) return;
    this.serverPre = pre;
    const c = this.clientPre?.encryption ?? Encrypt.NotSup;
    const s = pre.encryption ?? Encrypt.NotSup;
    // [MS-TDS] 2.2.6.5: OFF/OFF encrypts the login only; ON or REQ on either side everything; NOT_SUP on either side nothing.
    if (s === Encrypt.NotSup || c === Encrypt.NotSup) this.crypt = Crypt.None;
    else if (s === Encrypt.Off && c === Encrypt.Off) this.crypt = Crypt.LoginOnly;
    else this.crypt = Crypt.Full;
    if (pre.version !== undefined && this.records.who.serverVersion === undefined) this.records.who.serverVersion = pre.version;
    // Login-only encryption leaves everything after LOGIN7 in clear: records are not tls.
    if (this.crypt !== Crypt.Full) this.records.who.tls = false;
    if (this.crypt === Crypt.Full) this.tlsSession(undefined);
  }

  // ---- requests ------------------------------------------------------------------

  private request(ch: Channel, type: number, status: number, payload: Uint8Array, flags: number, wire: number): void {
    const truncated = (flags & MsgFlag.Truncated) !== 0;
    switch (type) {
      case PacketType.PreLogin: {
        if (payload.length >= 3 && isTlsRecord(payload, 0)) {
          this.tlsRecords++; // the TLS handshake of an encrypted login
          return;
        }
        const pre = decodePreLogin(payload);
        if (pre === undefined) return;
        this.clientPre = pre;
        this.records.who.dbProduct = 'mssql';
        ch.preLogin = true;
        return;
      }
      case PacketType.Login7:
        this.login7(ch, payload, truncated, wire);
        return;
      case PacketType.Login5:
        this.login5(ch, payload, truncated, wire);
        return;
      case PacketType.Sspi:
      case PacketType.FedAuthToken:
        return; // authentication continues; the login record is still pending
      case PacketType.Attention: {
        const r = this.pairing.get(ch.id);
        if (r !== undefined) r.cancelled = true;
        ch.attention = true;
        return;
      }
      default:
        break;
    }
    const ev = this.records.start('statement', this.now);
    ev.bytesIn = wire;
    if (status & PacketStatus.ResetConnection) ev.attributes = { resetConnection: 'true' };
    if (ch.id >= 0) (ev.attributes ??= {}).marsSession = String(ch.id);
    let more: AuditEvent[] = [];
    let prepares: string | undefined;
    switch (type) {
      case PacketType.SqlBatch: {
        ev.command = 'SQLBatch';
        const text = this.dialect === Dialect.Tds50 ? decodeText(payload, pickCharset(this.ctx.options.charset, this.charset5, 'latin1')) : decodeSqlBatch(payload);
        this.records.sql(ev, text);
        if (/^\s*insert\s+bulk\b/i.test(text)) this.lastBulk = text;
        const h = this.dialect === Dialect.Tds50 ? undefined : skipAllHeaders(payload);
        if (h?.txn !== undefined && h.txn !== 0n) (ev.attributes ??= {}).transactionDescriptor = h.txn.toString(16);
        break;
      }
      case PacketType.Rpc: {
        ev.command = 'RPC';
        const { calls, complete } = decodeRpc(payload, this.ctx.options.charset);
        if (!complete) ev.truncated = true;
        if (calls.length === 0) {
          ev.sql = 'EXEC ?';
          break;
        }
        prepares = this.rpc(ev, calls[0]!);
        for (let i = 1; i < calls.length; i++) {
          const e = this.records.start('statement', this.now);
          e.command = 'RPC';
          this.rpc(e, calls[i]!);
          more.push(e);
        }
        break;
      }
      case PacketType.TransactionManager:
        ev.command = 'TransactionManager';
        ev.sql = decodeTransactionManager(payload) ?? 'TM_UNKNOWN';
        break;
      case PacketType.BulkLoad: {
        ev.command = 'BulkLoad';
        ev.sql = this.lastBulk ?? 'INSERT BULK';
        const acc = new ResponseAcc();
        const p = new TokenParser(this.dialect, 0, this.max, 'utf-8', { loginAck() {}, envChange() {} });
        p.push(payload, true, acc);
        (ev.attributes ??= {}).bulkRows = String(acc.rowCount);
        break;
      }
      case PacketType.Normal5: {
        this.dialect5();
        const acc = new ResponseAcc();
        const p = new TokenParser(Dialect.Tds50, 0, this.max, pickCharset(this.ctx.options.charset, this.charset5, 'latin1'), { loginAck() {}, envChange() {} });
        p.push(payload, true, acc);
        if (acc.logout) {
          const out = this.records.start('logout', this.now);
          out.command = 'LOGOUT';
          out.status = 'ok';
          this.loggedOut = true;
          this.records.emit(out);
          return;
        }
        const params = p.lastParams;
        if (acc.language !== undefined) {
          ev.command = 'Language';
          this.records.sql(ev, acc.language);
        } else if (acc.rpcName !== undefined) {
          ev.command = 'DBRPC';
          ev.sql = `EXEC ${acc.rpcName}`;
          ev.attributes = { ...ev.attributes, procedure: acc.rpcName };
        } else if (acc.dynamicId !== undefined) {
          ev.command = 'Dynamic';
          ev.statementId = acc.dynamicId;
          if (acc.dynamicSql !== undefined) {
            // jTDS and Open Client prepare as "create proc <id> as <statement>": the statement is what runs.
            const m = /^\s*create\s+proc(?:edure)?\s+(\S+)\s+as\s+/i.exec(acc.dynamicSql);
            const sql = m !== null && m[1] === acc.dynamicId ? acc.dynamicSql.slice(m[0].length) : acc.dynamicSql;
            this.records.sql(ev, sql);
            this.prepared.set(`d:${acc.dynamicId}`, sql);
          } else {
            const sql = this.prepared.get(`d:${acc.dynamicId}`);
            if (sql !== undefined) this.records.sql(ev, sql);
          }
          if (acc.dynamicType & 0x04) this.prepared.delete(`d:${acc.dynamicId}`);
          ev.attributes = { ...ev.attributes, dynamic: dynamicName(acc.dynamicType) };
        } else {
          ev.command = 'TDS5';
        }
        if (params !== undefined && params.length > 0) ev.params = params;
        if (acc.truncated) ev.truncated = true;
        break;
      }
      default:
        return;
    }
    if (truncated) ev.truncated = true;
    this.push(ch, ev, false, prepares, 0, more);
    more = [];
  }

  /** Fills a statement record from one RPC call; returns the SQL when the call returns a handle for it. */
  private rpc(ev: AuditEvent, call: RpcCall): string | undefined {
    const name = call.proc.toLowerCase().replace(/^(master\.)?(dbo|sys)\.|^(master|sys)\.\./, '');
    const a = (ev.attributes ??= {});
    a.procedure = call.proc;
    const ps = call.params;
    const known = sqlProcs[name];
    if (known !== undefined) {
      const [sqlAt, valuesAt, returnsHandle] = known;
      const sql = ps[sqlAt]?.value;
      if (typeof sql === 'string') {
        this.records.sql(ev, sql);
        if (ps.length > valuesAt) ev.params = ps.slice(valuesAt).map((p) => p.value);
        if (name === 'sp_executesql' || name === 'sp_prepexec' || name === 'sp_prepare') {
          const decl = ps[name === 'sp_executesql' ? 1 : 1]?.value;
          if (typeof decl === 'string' && decl !== '') a.paramDeclaration = decl;
        }
        return returnsHandle ? sql : undefined;
      }
    }
    if (name === 'sp_execute' || name === 'sp_cursorexecute') {
      const h = ps[0]?.value;
      if (h !== undefined && h !== null && typeof h !== 'object') {
        ev.statementId = String(h);
        const sql = this.prepared.get(String(h));
        if (sql !== undefined) this.records.sql(ev, sql);
        else ev.sql = `EXEC ${call.proc} ${String(h)}`;
      }
      ev.params = ps.slice(name === 'sp_execute' ? 1 : 2).map((p) => p.value);
      return undefined;
    }
    if (name === 'sp_unprepare' || name === 'sp_cursorunprepare') {
      const h = ps[0]?.value;
      if (h !== undefined && h !== null && typeof h !== 'object') {
        ev.statementId = String(h);
        this.prepared.delete(String(h));
      }
    }
    ev.sql = `EXEC ${call.proc}`;
    if (ps.length > 0) ev.params = ps.map((p) => p.value);
    return undefined;
  }

  private push(ch: Channel, ev: AuditEvent, login: boolean, prepares: string | undefined, bytesOut: number, more: AuditEvent[] = []): void {
    if (this.gapNext) {
      ev.gapBefore = true;
      this.gapNext = false;
    }
    const r: Req = { ts: this.now, truncated: ev.truncated === true, gapBefore: ev.gapBefore === true, ev, more, login, bytesOut, cancelled: false, ...(prepares !== undefined ? { prepares } : {}) };
    this.pairing.push(ch.id, r);
  }

  private login7(ch: Channel, p: Uint8Array, truncated: boolean, wire: number): void {
    const l = decodeLogin7(p);
    if (l === undefined) return;
    this.records.midSession = false;
    this.dialect = l.tdsVersion >= 0x72000000 || l.tdsVersion < 0x70000000 ? Dialect.Tds72 : Dialect.Tds70;
    ch.parser.dialect = this.dialect;
    ch.parser.versionKnown = true;
    const w = this.records.who;
    w.dbProduct = 'mssql';
    if (l.userName !== '') w.user = l.userName;
    if (l.hostName !== '') w.clientHost = l.hostName;
    if (l.appName !== '') w.clientProgram = l.appName;
    if (l.library !== '') w.clientLibrary = `${l.library} ${progVersion(l.clientProgVer)}`;
    if (l.database !== '') w.database = l.database;
    w.clientPid = String(l.clientPid);
    w.tls = this.crypt === Crypt.LoginOnly;
    const ev = this.loginRecord();
    ev.command = 'LOGIN7';
    ev.bytesIn = wire;
    const a = (ev.attributes ??= {});
    a.tdsVersion = tdsVersionName(l.tdsVersion);
    a.packetSize = String(l.packetSize);
    if (l.serverName !== '') a.serverName = l.serverName;
    if (l.language !== '') a.language = l.language;
    a.optionFlags = [l.optionFlags1, l.optionFlags2, l.typeFlags, l.optionFlags3].map((b) => b.toString(16).padStart(2, '0')).join('');
    if (l.sspi) a.integratedAuth = 'true';
    if (l.optionFlags3 & 0x10) a.featureExt = 'true';
    if (truncated) ev.truncated = true;
    this.push(ch, ev, true, undefined, 0);
  }

  private login5(ch: Channel, p: Uint8Array, truncated: boolean, wire: number): void {
    const l = decodeLogin5(p);
    if (l === undefined) return;
    this.records.midSession = false;
    this.dialect5();
    if (l.charset !== '') this.charset5 = l.charset;
    ch.parser.charset = pickCharset(this.ctx.options.charset, this.charset5, 'latin1');
    const w = this.records.who;
    if (l.userName !== '') w.user = l.userName;
    if (l.hostName !== '') w.clientHost = l.hostName;
    if (l.appName !== '') w.clientProgram = l.appName;
    if (l.library !== '') w.clientLibrary = l.library;
    if (l.hostProcess !== '') w.clientPid = l.hostProcess;
    w.tls = false;
    const ev = this.records.start('login', this.now);
    ev.command = 'LOGIN';
    ev.bytesIn = wire;
    const a: Record<string, string> = { tdsVersion: l.tdsVersion };
    if (l.serverName !== '') a.serverName = l.serverName;
    if (l.language !== '') a.language = l.language;
    if (l.charset !== '') a.charset = l.charset;
    if (l.packetSize !== '') a.packetSize = l.packetSize;
    ev.attributes = a;
    if (truncated) ev.truncated = true;
    this.push(ch, ev, true, undefined, 0);
  }

  private dialect5(): void {
    if (this.dialect === Dialect.Tds50) return;
    this.dialect = Dialect.Tds50;
    this.main.parser.versionKnown = true;
    this.records.who.dbProduct = 'sybase';
    for (const ch of [this.main, ...this.channels.values()]) {
      ch.parser.dialect = Dialect.Tds50;
      ch.parser.charset = pickCharset(this.ctx.options.charset, this.charset5, 'latin1');
    }
  }

  // ---- responses -----------------------------------------------------------------

  private loginAck(product: string, version: string, tdsVersion: number, ok: boolean): void {
    const w = this.records.who;
    if (this.dialect !== Dialect.Tds50 && (tdsVersion >>> 24) >= 0x70) {
      // The server's LOGINACK names the version both sides speak from here on.
      this.dialect = tdsVersion >>> 0 >= 0x72000000 ? Dialect.Tds72 : Dialect.Tds70;
      for (const ch of [this.main, ...this.channels.values()]) {
        ch.parser.dialect = this.dialect;
        ch.parser.versionKnown = true;
      }
    }
    w.serverVersion = version;
    w.dbProduct = this.dialect === Dialect.Tds50 && !/microsoft/i.test(product) ? 'sybase' : 'mssql';
    const r = this.pairing.get(this.main.id);
    if (r !== undefined && r.login) {
      r.ev.serverVersion = version;
      r.ev.dbProduct = w.dbProduct;
      const a = (r.ev.attributes ??= {});
      a.serverProduct = product;
      if (this.dialect !== Dialect.Tds50) a.serverTdsVersion = tdsVersionName(tdsVersion);
      if (!ok) a.loginAckStatus = 'failed';
      else a.loginAck = 'true';
    }
    if (ok) {
      this.loggedIn = true;
      this.records.midSession = false;
    }
  }

  private envChange(type: number, nv: string, ov: string): void {
    const w = this.records.who;
    const r = this.pairing.get(this.main.id);
    switch (type) {
      case EnvType.Database:
        w.database = nv;
        if (r !== undefined) r.ev.database = nv;
        break;
      case EnvType.Language:
      case EnvType.PacketSize:
      case EnvType.Charset:
        if (type === EnvType.Charset && this.dialect === Dialect.Tds50 && nv !== '') {
          this.charset5 = nv;
          this.main.parser.charset = pickCharset(this.ctx.options.charset, nv, 'latin1');
        }
        if (r !== undefined) (r.ev.attributes ??= {})[type === EnvType.Language ? 'language' : type === EnvType.PacketSize ? 'negotiatedPacketSize' : 'charset'] = nv;
        break;
      case EnvType.Collation:
        if (r !== undefined && r.login) (r.ev.attributes ??= {}).collation = nv;
        break;
      case EnvType.BeginTran:
      case EnvType.CommitTran:
      case EnvType.RollbackTran:
        if (r !== undefined) (r.ev.attributes ??= {}).transaction = `${type === EnvType.BeginTran ? 'begin' : type === EnvType.CommitTran ? 'commit' : 'rollback'}${nv !== '' ? ` ${nv}` : ov !== '' ? ` ${ov}` : ''}`;
        break;
      default:
        break;
    }
  }

  private finish(r: Req, acc: ResponseAcc): void {
    const ev = r.ev;
    if (acc.error !== undefined) {
      const e = acc.error;
      this.records.error(ev, { code: e.number, message: e.message, ...(e.sqlState !== undefined ? { sqlState: e.sqlState } : {}) });
      const a = (ev.attributes ??= {});
      a.errorState = String(e.state);
      a.errorClass = String(e.severity);
      if (e.procedure !== '') a.errorProcedure = e.procedure;
      if (e.line > 0) a.errorLine = String(e.line);
    } else if (r.login) {
      ev.status = ev.attributes?.loginAck === 'true' ? 'ok' : 'error';
    } else ev.status = acc.doneError ? 'error' : 'ok';
    if (r.cancelled || acc.attention) {
      (ev.attributes ??= {}).cancelled = 'true';
      if (ev.status === 'ok') {
        ev.status = 'error';
        ev.message ??= 'cancelled by attention';
      }
    }
    if (acc.infos > 0) ev.warnings = acc.infos;
    if (!r.login) {
      if (acc.affected >= 0) ev.affectedRows = acc.affected;
      if (acc.columns !== undefined) {
        ev.columns = acc.columns;
        ev.rowsReturned = Math.max(acc.rowsReturned, acc.rowCount);
        if (acc.rows !== undefined) ev.rows = acc.rows;
      }
      if (acc.returnStatus !== undefined) (ev.attributes ??= {}).returnStatus = String(acc.returnStatus);
      if (acc.returnValues !== undefined) {
        const a = (ev.attributes ??= {});
        for (const [name, v] of acc.returnValues) a[`out:${name || '?'}`] = v === null ? 'NULL' : typeof v === 'object' ? ('hex' in v ? v.hex : v.text) : String(v);
        if (r.prepares !== undefined) {
          const h = acc.returnValues.find(([, v]) => typeof v === 'number')?.[1];
          if (h !== undefined) {
            ev.statementId = String(h);
            this.prepared.set(String(h), r.prepares);
          }
        }
      }
      if (acc.dynamicId !== undefined && ev.statementId === undefined) ev.statementId = acc.dynamicId;
    } else if (ev.status === 'ok') {
      this.loggedIn = true;
      if (this.records.who.database !== undefined) ev.database = this.records.who.database;
    }
    if (acc.truncated) r.truncated = true;
    ev.bytesOut = r.bytesOut;
    this.records.end(ev, this.now);
    this.emitReq(r, false);
  }

  private emitReq(r: Req, unanswered: boolean): void {
    const ev = r.ev;
    if (r.truncated) ev.truncated = true;
    if (r.gapBefore) ev.gapBefore = true;
    if (unanswered && ev.status !== 'ok') ev.status = 'unknown';
    this.records.emit(ev);
    for (const e of r.more) {
      e.status = ev.status;
      if (ev.endTs !== undefined) this.records.end(e, ev.endTs);
      this.records.emit(e);
    }
  }
}

function encryptName(e: number): string {
  return e === Encrypt.Off ? 'off' : e === Encrypt.On ? 'on' : e === Encrypt.NotSup ? 'not_sup' : e === Encrypt.Req ? 'req' : `0x${e.toString(16)}`;
}

function dynamicName(t: number): string {
  if (t & 0x01) return 'prepare';
  if (t & 0x02) return 'execute';
  if (t & 0x04) return 'deallocate';
  if (t & 0x08) return 'exec_immediate';
  return `0x${t.toString(16)}`;
}

/** ClientProgVer: big-endian major.minor.build as most drivers send it. */
function progVersion(v: number): string {
  return `${(v >>> 24) & 0xff}.${(v >>> 16) & 0xff}.${v & 0xffff}`;
}
