// The connection phase of a MySQL session: the greeting, the client's login,
// the authentication exchange (auth switch, more data) and what they settle
// for the rest of the connection: capabilities, charset, compression,
// identity. The command phase (session.ts) builds on this class.
//
//   server                      client
//   HandshakeV10 (seq 0)  ->
//                         <-    HandshakeResponse41 (seq 1) | SSLRequest -> TLS
//   AuthSwitchRequest     ->                                   (optional)
//                         <-    auth data
//   AuthMoreData ...      <->   ...
//   OK | ERR              ->    (compression, if negotiated, starts after the OK)
import { type AuditEvent, type Direction, ByteReader } from '@dbtap/core';
import { KitSession, Outcome, pickCharset, type ResyncCheck } from '../kit/index.js';
import type { SessionContext } from '../plugin.js';
import { chainLength, decodeAuthSwitch, decodeErr, decodeGreeting, decodeLoginRequest, decodeOk, exactCompressed, exactPlain, loginBoundary, looksCompressed, plausibleAuthPacket, plausibleCommand, plausibleGreeting, plausibleRefusal } from './decoder.js';
import { Channel, type MysqlPacket, PacketFramer } from './framer.js';
import { Cap, Resp, commandName, type Greeting, type LoginRequest } from './messages.js';
import { charsetOfCollation, setName, text } from './values.js';

/** Where the connection is. */
export const enum Phase {
  Greeting, // waiting for the server greeting
  Login, // waiting for the client's HandshakeResponse
  Auth, // authentication exchange until OK / ERR
  Command, // command phase
  Closed, // login failed or the stream is undecodable (zstd): bytes are only counted
}

/** Connection attributes that become record fields rather than `attributes`. */
const IDENTITY_ATTRS = new Set(['program_name', '_client_name', '_client_version', '_os_user', '_pid']);

/** The connection phase of a MySQL session; see the module comment. */
export abstract class MysqlLogin extends KitSession {
  protected readonly client: Channel;
  protected readonly server: Channel;
  protected readonly reader = new ByteReader();
  protected phase: Phase;
  /** A gap in the client stream that the next record must show. */
  protected pendingGap = false;
  /** Capabilities in force (client's and server's); defaults for a capture without the login. */
  protected caps = Cap.Protocol41 | Cap.SecureConnection | Cap.Transactions;
  protected mariaCaps = 0;
  /** CLIENT_DEPRECATE_EOF, or undefined until the responses show it. */
  protected deprecateEof: boolean | undefined;
  /** The charset text is decoded in: the audit object's, else the negotiated one, else UTF-8. */
  protected charset: string;
  /** The login request, once seen. */
  protected login: LoginRequest | undefined;
  private greeting: Greeting | undefined;
  private clientCaps = 0;
  private loginTs = 0;
  private loginBytesIn = 0;
  private loginBytesOut = 0;
  private authPlugin: string | undefined;

  constructor(ctx: SessionContext) {
    super(ctx, 'mysql');
    this.charset = pickCharset(ctx.options.charset, undefined);
    const max = ctx.options.maxMessageBytes;
    const synced = !ctx.midStream;
    const clientResync: ResyncCheck = (b, p, e) => (this.phase === Phase.Greeting || this.phase === Phase.Login ? loginBoundary(b, p, e) : this.commandBoundary(b, p, e) ? 1 : Outcome.Malformed);
    const serverResync: ResyncCheck = (b, p, e) => (this.serverBoundary(b, p, e) ? 1 : Outcome.Malformed);
    this.client = new Channel(new PacketFramer((p) => this.onClientPacket(p), max, clientResync, synced), max);
    this.server = new Channel(new PacketFramer((p) => this.onServerPacket(p), max, serverResync, synced), max);
    this.phase = ctx.midStream ? Phase.Command : Phase.Greeting;
    this.track(this.client.plain.framer, this.server.plain.framer);
  }

  /** Handles one client packet. */
  protected abstract onClientPacket(p: MysqlPacket): void;
  /** Handles one server packet. */
  protected abstract onServerPacket(p: MysqlPacket): void;
  /** While the client stream scans in the command phase: can a command start at `buf[p]`? */
  protected abstract commandBoundary(buf: Uint8Array, p: number, end: number): boolean;
  /** While the server stream scans in the command phase: can a response packet start at `buf[p]`? */
  protected abstract responseBoundary(buf: Uint8Array, p: number, end: number): boolean;

  // ---- framing --------------------------------------------------------------------

  protected override onData(dir: Direction, bytes: Uint8Array): void {
    if (this.phase === Phase.Closed) {
      this.stats.skippedBytes += bytes.length;
      return;
    }
    const ch = dir === 0 ? this.client : this.server;
    if (this.phase === Phase.Command && !ch.compressed) {
      if (!ch.plain.synced) this.maybeCompressedMidStream(bytes);
      // The login (and with it CLIENT_COMPRESS) was not seen, but the client speaks compressed.
      else if (dir === 0 && this.login === undefined && ch.plain.idle && !plausibleCommand(bytes, 0, bytes.length) && exactCompressed(bytes)) this.startCompression();
    } else if (this.phase === Phase.Auth && dir === 0 && this.compressionNegotiated() && ch.plain.idle && !ch.compressed && looksCompressed(bytes, 0, bytes.length)) {
      // The OK that ended authentication was lost: the client already speaks compressed.
      this.endAuthImplicitly();
      this.startCompression();
    }
    ch.push(bytes);
  }

  /** Compressed packets whose zlib body did not inflate, both directions. */
  protected override protocolCounters(): Record<string, number> {
    return { badCompressedPackets: (this.client.compressed?.stats.badFrames ?? 0) + (this.server.compressed?.stats.badFrames ?? 0) };
  }

  protected override onBug(dir: Direction): void {
    (dir === 0 ? this.client : this.server).plain.desync();
  }

  /** A capture that starts after CLIENT_COMPRESS was negotiated: a chunk that is exactly a chain of compressed packets (and not of plain ones). */
  private maybeCompressedMidStream(bytes: Uint8Array): void {
    if (chainLength(bytes, 0, bytes.length) >= 1 && exactPlain(bytes)) return;
    if (exactCompressed(bytes)) this.startCompression();
  }

  protected startCompression(): void {
    const c = this.client.enableCompression();
    const s = this.server.enableCompression();
    if (c) this.track(c);
    if (s) this.track(s);
  }

  private compressionNegotiated(): boolean {
    return (this.clientCaps & (this.greeting?.capabilities ?? 0xffffffff) & Cap.Compress) !== 0;
  }

  private serverBoundary(buf: Uint8Array, p: number, end: number): boolean {
    switch (this.phase) {
      case Phase.Greeting:
        return plausibleGreeting(buf, p, end) || plausibleRefusal(buf, p, end);
      case Phase.Login:
      case Phase.Auth:
        return plausibleAuthPacket(buf, p, end);
      default:
        return this.responseBoundary(buf, p, end);
    }
  }

  /** The capture started just before the greeting: what follows is a whole connection (the client's login is scanned for). */
  protected greetingFoundMidStream(): void {
    this.phase = Phase.Greeting;
    this.records.midSession = false;
  }

  // ---- server packets of the connection phase --------------------------------------

  /** A server packet before the command phase. */
  protected onLoginServerPacket(p: MysqlPacket): void {
    const b = p.payload;
    if (this.phase === Phase.Greeting) this.onGreeting(p);
    else if (this.phase === Phase.Auth) this.onAuthResponse(p);
    // The server speaks before the client logs in only to refuse; an OK
    // means the login request was lost (gap): record what is known.
    else if (b[0] === Resp.Err) this.loginFailed(p);
    else if (b[0] === Resp.Ok) this.onAuthResponse(p, true);
  }

  private onGreeting(p: MysqlPacket): void {
    const b = p.payload;
    if (b[0] === Resp.Err) {
      // The server refused the connection before the handshake (e.g. too many connections, host blocked).
      this.loginTs = this.now;
      this.loginFailed(p);
      return;
    }
    const g = decodeGreeting(this.reader.reset(b));
    if (typeof g === 'number' && p.truncated && (b.length === 0 || b[0] === 10)) {
      // A greeting cut by a gap: the login that follows is still decodable.
      const nul = b.indexOf(0, 1);
      if (nul > 1) this.records.who.serverVersion = text(b.subarray(1, nul), 'utf-8');
      this.phase = Phase.Login;
      return;
    }
    if (typeof g === 'number') {
      this.stats.malformed++;
      // Not a greeting: the capture missed it; carry on in command phase.
      this.phase = Phase.Command;
      this.records.midSession = true;
      return;
    }
    this.greeting = g;
    this.loginBytesOut += p.wireBytes;
    const who = this.records.who;
    who.serverVersion = g.serverVersion;
    who.sessionId = String(g.connectionId);
    if (/mariadb/i.test(g.serverVersion)) who.dbProduct = 'mariadb';
    this.authPlugin = g.authPlugin || undefined;
    this.phase = Phase.Login;
  }

  private onAuthResponse(p: MysqlPacket, requestLost = false): void {
    const b = p.payload;
    this.loginBytesOut += p.wireBytes;
    switch (b[0]) {
      case Resp.Ok: {
        const ok = decodeOk(this.reader.reset(b), this.caps);
        if (typeof ok !== 'number' && ok.schema !== undefined) this.records.who.database = ok.schema || undefined;
        this.loggedIn = true;
        const ev = this.loginEvent();
        ev.status = 'ok';
        if (typeof ok !== 'number' && ok.warnings) ev.warnings = ok.warnings;
        if (requestLost) ev.truncated = true;
        this.records.emit(ev);
        this.phase = Phase.Command;
        this.loginBytesIn = 0;
        this.loginBytesOut = 0;
        // Compression starts right after the OK that ends authentication.
        if (this.compressionNegotiated()) this.startCompression();
        // zstd compression cannot be decoded here: stop cleanly.
        else if (this.clientCaps & Cap.ZstdCompression) this.phase = Phase.Closed;
        return;
      }
      case Resp.Err:
        this.loginFailed(p, true);
        return;
      case Resp.Eof: {
        const plugin = decodeAuthSwitch(this.reader.reset(b));
        if (plugin) this.authPlugin = plugin;
        return;
      }
      default:
        // AuthMoreData (0x01), e.g. caching_sha2_password fast-auth result or public key.
        return;
    }
  }

  /** The client went on to send commands although the end of authentication was not seen. */
  protected endAuthImplicitly(): void {
    const ev = this.loginEvent();
    ev.status = 'ok';
    ev.truncated = true;
    this.loggedIn = true;
    this.records.emit(ev);
    this.phase = Phase.Command;
  }

  /** The server refused the login; `counted` when the ERR's bytes are already in the login's bytes out. */
  private loginFailed(p: MysqlPacket, counted = false): void {
    const e = decodeErr(this.reader.reset(p.payload));
    if (!counted) this.loginBytesOut += p.wireBytes;
    const ev = this.loginEvent();
    ev.status = 'error';
    if (typeof e !== 'number') this.records.error(ev, e);
    this.records.emit(ev);
    this.phase = Phase.Closed;
  }

  // ---- client packets of the connection phase ---------------------------------------

  /**
   * A client packet before the command phase; true when it was consumed,
   * false when it is a command (the phase has moved to Command).
   */
  protected onLoginClientPacket(p: MysqlPacket): boolean {
    switch (this.phase) {
      case Phase.Greeting:
        this.phase = Phase.Command;
        this.records.midSession = true;
        // The greeting was not captured. A login (seq 1) or a command (seq 0) tells which phase we are in.
        if (p.seq === 1 && p.payload.length >= 4) {
          this.onLogin(p);
          return true;
        }
        return false;
      case Phase.Login:
        if (p.seq !== 0) {
          this.onLogin(p);
          return true;
        }
        // A command: the login was lost in a gap.
        this.phase = Phase.Command;
        this.records.midSession = true;
        return false;
      case Phase.Auth:
        if (p.seq !== 0 || commandName(p.payload[0] ?? 0xff) === undefined) {
          this.loginBytesIn += p.wireBytes;
          return true;
        }
        // A command: the end of authentication was lost in a gap.
        this.endAuthImplicitly();
        return false;
      default:
        return this.phase !== Phase.Command;
    }
  }

  private onLogin(p: MysqlPacket): void {
    this.loginTs = this.now;
    this.loginBytesIn += p.wireBytes;
    const b = p.payload;
    if (b.length >= 4) this.clientCaps = (b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) >>> 0;
    const req = decodeLoginRequest(this.reader.reset(b));
    if (typeof req === 'number') {
      this.stats.malformed++;
      this.phase = Phase.Auth;
      return;
    }
    this.login = req;
    const serverCaps = this.greeting?.capabilities ?? 0xffffffff;
    this.caps = (req.capabilities & serverCaps) >>> 0;
    this.mariaCaps = req.mariaCapabilities & (this.greeting?.mariaCapabilities ?? 0xffffffff);
    this.deprecateEof = (this.caps & Cap.DeprecateEof) !== 0;
    this.charset = pickCharset(this.ctx.options.charset, charsetOfCollation(req.charset));
    const who = this.records.who;
    if (req.sslRequest) {
      who.tls = true;
      const ev = this.loginEvent();
      ev.status = 'unknown';
      ev.message = 'TLS requested: the session is encrypted';
      this.records.emit(ev);
      this.encrypted();
      return;
    }
    who.tls = false;
    who.user = req.user;
    who.database = req.database || undefined;
    if (req.authPlugin) this.authPlugin = req.authPlugin;
    const a = req.attributes;
    if (a) {
      who.clientProgram = a.program_name;
      const lib = [a._client_name, a._client_version].filter((x) => x !== undefined).join(' ');
      who.clientLibrary = lib || undefined;
      who.osUser = a._os_user;
      who.clientPid = a._pid;
      who.clientHost = a._client_host ?? a._host;
    }
    this.phase = Phase.Auth;
  }

  /** The login record: timing and bytes of the whole exchange, the attributes that are not record fields. */
  private loginEvent(): AuditEvent {
    const ev = this.records.start('login', this.loginTs || this.now);
    this.records.end(ev, this.now);
    ev.bytesIn = this.loginBytesIn;
    ev.bytesOut = this.loginBytesOut;
    const attrs: Record<string, string> = {};
    const a = this.login?.attributes;
    if (a) for (const k of Object.keys(a)) if (!IDENTITY_ATTRS.has(k)) setName(attrs, k, a[k]!);
    if (this.authPlugin) attrs.authPlugin = this.authPlugin;
    if (this.login) attrs.clientCharset = this.charset;
    if (this.login && this.login.capabilities & Cap.Compress) attrs.compression = 'zlib';
    if (Object.keys(attrs).length > 0) ev.attributes = attrs;
    if (this.pendingGap) {
      ev.gapBefore = true;
      this.pendingGap = false;
    }
    return ev;
  }
}
