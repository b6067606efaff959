// The Dameng session: startup -> login -> statements, one request in flight
// at a time (DM clients wait for each reply), so a reply pairs with the
// single pending request and a new request while one is pending flushes the
// old one as unanswered (its reply was lost in a gap or not captured).
//
//   client                         server
//   STARTUP 0xc8 (version, key?)   ->  reply (0xc8)
//   LOGIN 0x01 (user, pw, app, os) ->  reply: return code < 0 = login failed
//   ALLOC_STMT 0x03                ->  reply (statement handle)
//   SQL 0x05 (text)                ->  reply: return code, rows affected
//   COMMIT 0x08 / ROLLBACK 0x09    ->  reply
//   FIN (dmdb sends ROLLBACK and closes; no logout message was seen)
import type { AuditEvent, CloseReason, Direction } from '@dbtap/core';
import { FifoPairing, type Pending } from '../kit/pairing.js';
import { FrameFlag, type Framer } from '../kit/framer.js';
import { isOutcome } from '../kit/outcome.js';
import { pickCharset } from '../kit/record.js';
import { KitSession } from '../kit/session.js';
import type { SessionContext } from '../plugin.js';
import { decodeClient, decodeHeader, decodeReply, guessCharset } from './decoder.js';
import { damengFramer } from './framer.js';
import { Command, commandNames, HEADER_BYTES, type ClientMessage } from './messages.js';

/** A request waiting for its reply. */
interface Request extends Pending {
  readonly command: number;
  readonly msg: ClientMessage;
  bytesIn: number;
}

/** `SET SCHEMA name` (dmdb sends it for the `schema` connection option): the current schema. */
const SET_SCHEMA = /^\s*set\s+schema\s+(?:"([^"]{1,128})"|([A-Za-z_][\w$#]{0,127}))\s*;?\s*$/i;

/** A Dameng connection; see the module comment. */
export class DamengSession extends KitSession {
  private readonly framers: [Framer, Framer];
  private readonly pending: FifoPairing<Request>;
  /** The audit object's charset, when set, wins over the guess. */
  private charset: string | undefined;
  private readonly forced: boolean;
  private gapNext = false;
  private encryptRequested = false;
  private clientVersion: string | undefined;
  private osName: string | undefined;
  private protocolVersion = 0;
  private loginSeen = false;
  private replyCount = 0;

  constructor(ctx: SessionContext) {
    super(ctx, 'dameng');
    const max = ctx.options.maxMessageBytes;
    this.framers = [
      damengFramer((m, wire, flags) => this.onClient(m, wire, flags), max, !ctx.midStream),
      damengFramer((m, wire, flags) => this.onServer(m, wire, flags), max, !ctx.midStream),
    ];
    this.pending = new FifoPairing<Request>(1, (r) => this.finish(r, undefined));
    this.forced = ctx.options.charset !== undefined && ctx.options.charset !== '';
    this.charset = this.forced ? pickCharset(ctx.options.charset, undefined) : undefined;
    this.track(this.framers[0], this.framers[1], this.pending);
  }

  protected onData(dir: Direction, bytes: Uint8Array): void {
    this.framers[dir].push(bytes);
  }

  protected onGap(dir: Direction, nbytes: number): void {
    if (dir === 1) this.pending.markTruncated();
    if (!this.framers[dir].gap(nbytes) && dir === 0) this.gapNext = true;
  }

  protected onClose(reason: CloseReason): void {
    for (const r of this.pending.flush()) this.finish(r, undefined);
    const ev = this.logoutOnClose(reason);
    if (ev !== undefined) this.records.emit(ev);
  }

  protected onBug(dir: Direction): void {
    this.framers[dir].loseSync();
  }

  protected override protocolCounters(): Record<string, number> {
    return { replies: this.replyCount };
  }

  private text(): string {
    return this.charset ?? 'gb18030';
  }

  private onClient(m: Uint8Array, wire: number, flags: number): void {
    this.stats.messages++;
    if (m.length < HEADER_BYTES) {
      this.stats.malformed++;
      return;
    }
    const h = decodeHeader(m);
    if (h.command === Command.Sql && !this.forced && this.charset === undefined) {
      const end = m.indexOf(0, HEADER_BYTES);
      this.charset = guessCharset(m.subarray(HEADER_BYTES, end < 0 ? m.length : end));
    }
    const msg = decodeClient(m, h.command, this.text());
    if (isOutcome(msg)) {
      this.stats.malformed++;
      return;
    }
    const gapBefore = this.gapNext || this.framers[0].takeLostSync();
    this.gapNext = false;
    if (msg.kind === 'startup') {
      this.clientVersion = msg.clientVersion;
      this.encryptRequested = msg.encryptRequested;
      this.protocolVersion = msg.protocolVersion;
      this.records.who.clientLibrary = `DM ${msg.clientVersion}`;
    } else if (msg.kind === 'login') {
      this.loginSeen = true;
      this.records.midSession = false;
      if (msg.user !== undefined) this.records.who.user = msg.user;
      if (msg.appName !== undefined) this.records.who.clientProgram = msg.appName;
      if (msg.osName !== undefined) this.osName = msg.osName;
    }
    this.pending.push({ ts: this.now, truncated: (flags & FrameFlag.Truncated) !== 0, gapBefore, command: h.command, msg, bytesIn: wire });
  }

  private onServer(m: Uint8Array, wire: number, flags: number): void {
    this.stats.messages++;
    this.replyCount++;
    if (m.length < HEADER_BYTES) {
      this.stats.malformed++;
      return;
    }
    const r = this.pending.shift();
    if (r === undefined) {
      this.pending.noRequest();
      return;
    }
    if ((flags & FrameFlag.Truncated) !== 0) r.truncated = true;
    this.finish(r, m, wire);
  }

  /** Emits what a request and its reply (undefined: none seen) make. */
  private finish(r: Request, reply: Uint8Array | undefined, bytesOut = 0): void {
    const msg = r.msg;
    if (msg.kind === 'startup' || r.command === Command.AllocStmt) return;
    let ev: AuditEvent;
    if (msg.kind === 'login') {
      ev = this.records.start('login', r.ts);
      ev.command = 'LOGIN';
      const a: Record<string, string> = { loginEncrypted: String(msg.encrypted) };
      if (this.clientVersion !== undefined) a.clientVersion = this.clientVersion;
      if (this.encryptRequested) a.encryptionRequested = 'true';
      if (this.protocolVersion !== 0) a.protocolVersion = String(this.protocolVersion);
      if (this.osName !== undefined) a.osName = this.osName;
      ev.attributes = a;
    } else {
      if (!this.loginSeen && !this.loggedIn) {
        // A statement without a login in the capture: picked up mid-session.
        this.loggedIn = true;
        this.records.midSession = true;
      }
      ev = this.records.start('statement', r.ts);
      ev.command = msg.kind === 'sql' && !msg.direct ? 'SQL_PREPARE' : (commandNames[r.command] ?? `0x${r.command.toString(16)}`);
      if (msg.kind === 'sql') this.records.sql(ev, msg.text);
    }
    if (r.truncated) ev.truncated = true;
    if (r.gapBefore) ev.gapBefore = true;
    ev.bytesIn = r.bytesIn;
    if (reply !== undefined) {
      const rep = decodeReply(reply, this.text());
      this.records.end(ev, this.now);
      ev.bytesOut = bytesOut;
      if (rep.returnCode < 0) this.records.error(ev, { code: rep.returnCode, ...(rep.message !== undefined ? { message: rep.message } : {}) });
      else {
        ev.status = 'ok';
        if (msg.kind === 'sql' && rep.rows > 0) ev.affectedRows = rep.rows;
        if (msg.kind === 'login') this.loggedIn = true;
        if (msg.kind === 'sql') {
          const s = SET_SCHEMA.exec(msg.text);
          if (s !== null) this.records.who.database = s[1] ?? s[2]!.toUpperCase();
        }
      }
    }
    this.records.emit(ev);
  }
}
