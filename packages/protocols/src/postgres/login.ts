// The start of a PostgreSQL connection (protocol docs, "Start-up"): the
// SSL / GSS negotiation, the StartupMessage, the authentication exchange,
// ParameterStatus and BackendKeyData, up to the first ReadyForQuery. It
// keeps the session identity and builds the login record, which is started
// only when the login ends: the server reports its version, the backend pid
// and the final application_name after the StartupMessage.
//
// Passwords never reach a record: a PasswordMessage (cleartext or md5) only
// counts bytes, a SASLInitialResponse only yields its mechanism name.
import { ByteReader, type AuditEvent, type Timestamp } from '@dbtap/core';
import { pickCharset, type RecordBuilder } from '../kit/index.js';
import { Answer, AuthCode, type ErrorFields, type StartupPacket } from './messages.js';

/** Where a connection stands. */
export const enum Phase {
  /** Before the StartupMessage (SSL/GSS negotiation possible). */
  Startup = 0,
  /** StartupMessage sent, authentication under way. */
  Auth = 1,
  /** Authenticated (or picked up mid-session). */
  Ready = 2,
  /** The login failed, or the connection was a CancelRequest: nothing to log out. */
  Done = 3,
}

/** What the session does with its framers after a startup-phase packet. */
export const enum StartupNext {
  /** SSLRequest / GSSENCRequest: the server answers with one byte, the client sends another startup packet. */
  AwaitAnswer = 0,
  /** StartupMessage: the typed protocol begins. */
  Typed = 1,
  /** CancelRequest: the connection carries nothing more. */
  Done = 2,
}

const authNames: Record<number, string> = {
  [AuthCode.Ok]: 'trust',
  [AuthCode.KerberosV5]: 'kerberos-v5',
  [AuthCode.CleartextPassword]: 'cleartext',
  [AuthCode.Md5Password]: 'md5',
  [AuthCode.ScmCredential]: 'scm-credential',
  [AuthCode.Gss]: 'gss',
  [AuthCode.Sspi]: 'sspi',
  [AuthCode.GaussSm3]: 'sm3',
  [AuthCode.GaussIam]: 'iam',
};

/** The login under way; its record is built when it ends. */
interface LoginDraft {
  readonly ts: Timestamp;
  command: string | undefined;
  bytesIn: number;
  bytesOut: number;
  readonly attributes: Record<string, string>;
}

/**
 * Puts an ErrorResponse on a record: status, SQLSTATE (also the error code),
 * message, and severity / detail / hint / position as attributes.
 */
export function recordError(records: RecordBuilder, ev: AuditEvent, f: ErrorFields): void {
  const e: { code?: string; sqlState?: string; message?: string } = {};
  if (f.code !== undefined) {
    e.code = f.code;
    e.sqlState = f.code;
  }
  if (f.message !== undefined) e.message = f.message;
  records.error(ev, e);
  const a = (ev.attributes ??= {});
  const sev = f.severityEn ?? f.severity;
  if (sev !== undefined) a.severity = sev;
  if (f.detail !== undefined) a.detail = f.detail;
  if (f.hint !== undefined) a.hint = f.hint;
  if (f.position !== undefined) a.position = f.position;
}

/** True for an error that ends the connection. */
export function isFatal(f: ErrorFields): boolean {
  return f.severityEn === 'FATAL' || f.severity === 'FATAL' || f.severityEn === 'PANIC';
}

/** Login state of one connection; the session feeds it the startup-phase messages. */
export class PgLogin {
  /** Where the connection stands. */
  phase: Phase;
  /** The text charset for SQL and values: the audit object's, else client_encoding, else UTF-8. */
  charset: string;
  /** A FATAL error while idle; it goes on the logout record. */
  fatal: ErrorFields | undefined = undefined;
  private draft: LoginDraft | undefined = undefined;
  private authOk = false;
  private sasl = false;
  private readonly reader = new ByteReader();

  /**
   * @param records the session's record builder (its identity is kept here)
   * @param objectCharset the audit object's charset, which wins over what the connection negotiates
   * @param midStream the capture did not see the connection open
   */
  constructor(
    private readonly records: RecordBuilder,
    private readonly objectCharset: string | undefined,
    midStream: boolean,
  ) {
    this.phase = midStream ? Phase.Ready : Phase.Startup;
    this.charset = pickCharset(objectCharset, undefined);
  }

  /** A login is under way (its record not yet emitted). */
  get pending(): boolean {
    return this.draft !== undefined;
  }

  private open(ts: Timestamp): LoginDraft {
    return (this.draft ??= { ts, command: undefined, bytesIn: 0, bytesOut: 0, attributes: {} });
  }

  /**
   * Emits the login record: ended at `endTs` (ok, or failed with `error`),
   * else still open (`truncated` when the capture lost its end; `ok` when it
   * is known to have succeeded all the same).
   */
  private finish(endTs: Timestamp | undefined, error: ErrorFields | undefined, truncated = false, ok = endTs !== undefined): void {
    const d = this.draft;
    if (d === undefined) return;
    this.draft = undefined;
    const r = this.records;
    const ev = r.start('login', d.ts);
    if (endTs !== undefined) r.end(ev, endTs);
    if (d.command !== undefined) ev.command = d.command;
    ev.attributes = d.attributes;
    if (error !== undefined) recordError(r, ev, error);
    else if (ok) ev.status = 'ok';
    if (truncated) ev.truncated = true;
    if (d.bytesIn > 0) ev.bytesIn = d.bytesIn;
    if (d.bytesOut > 0) ev.bytesOut = d.bytesOut;
    r.emit(ev);
  }

  /** A startup-phase packet from the client. */
  startup(p: StartupPacket, wireLen: number, ts: Timestamp): StartupNext {
    const login = this.open(ts);
    login.bytesIn += wireLen;
    const who = this.records.who;
    switch (p.kind) {
      case 'ssl':
        login.attributes.sslRequest = 'sent';
        return StartupNext.AwaitAnswer;
      case 'gssenc':
        login.attributes.gssEncRequest = 'sent';
        return StartupNext.AwaitAnswer;
      case 'cancel':
      case 'gauss-stop': {
        this.draft = undefined;
        const r = this.records;
        r.midSession = false;
        if (p.kind === 'gauss-stop') who.dbProduct ??= 'opengauss';
        const ev = r.start('statement', ts);
        ev.command = p.kind === 'cancel' ? 'CancelRequest' : 'StopRequest';
        ev.status = 'ok';
        r.end(ev, ts);
        ev.statementId = String(p.pid);
        ev.bytesIn = wireLen;
        ev.attributes = p.kind === 'cancel' ? { targetPid: String(p.pid) } : { targetPid: String(p.pid), queryId: p.queryId };
        r.emit(ev);
        this.phase = Phase.Done;
        return StartupNext.Done;
      }
      case 'startup': {
        this.records.midSession = false;
        this.phase = Phase.Auth;
        login.command = 'StartupMessage';
        const attrs = login.attributes;
        attrs.protocol = `${p.major}.${p.minor}`;
        // openGauss clients announce protocol 3.50/3.51 (PG_PROTOCOL_GAUSS_BASE = 50).
        if (p.minor >= 50) who.dbProduct ??= 'opengauss';
        for (const [k, v] of p.params) {
          if (k === 'user') who.user = v;
          else if (k === 'database') who.database = v;
          else if (k === 'application_name') this.program(v);
          else {
            if (k === 'client_encoding') this.charset = pickCharset(this.objectCharset, v);
            // The client picks these names: define them as own properties (a name like
            // "__proto__" must not reach the object's prototype).
            Object.defineProperty(attrs, k, { value: v, enumerable: true, writable: true, configurable: true });
          }
        }
        // The database defaults to the user name (protocol docs, StartupMessage).
        if (who.database === undefined && who.user !== undefined) who.database = who.user;
        who.tls ??= false;
        return StartupNext.Typed;
      }
    }
  }

  private program(v: string): void {
    this.records.who.clientProgram = v === '' ? undefined : v;
  }

  /** The server's one-byte answer to SSLRequest / GSSENCRequest; true when encryption follows. */
  answer(b: number, wireLen: number, ts: Timestamp): boolean {
    const login = this.open(ts);
    login.bytesOut += wireLen;
    const attrs = login.attributes;
    if (b === Answer.Ssl) {
      attrs.sslResponse = 'S';
      return true;
    }
    if (b === Answer.Gss) {
      attrs.gssEncResponse = 'G';
      return true;
    }
    if (attrs.gssEncRequest !== undefined && attrs.gssEncResponse === undefined && attrs.sslRequest === undefined) attrs.gssEncResponse = 'N';
    else attrs.sslResponse = 'N';
    return false;
  }

  /** The stream turned encrypted (`how`: ssl, gss, direct-tls): the attempt is recorded. */
  encrypted(how: string, ts: Timestamp): void {
    this.open(ts).attributes.encryption = how;
    this.finish(undefined, undefined);
    this.phase = Phase.Done;
  }

  /** An Authentication request; false when it belongs to no login (a mid-stream pickup). */
  auth(code: number, data: Uint8Array, wireLen: number, ts: Timestamp): boolean {
    if (this.draft === undefined && this.records.midSession) return false;
    const login = this.open(ts);
    login.bytesOut += wireLen;
    const attrs = login.attributes;
    if (this.phase === Phase.Startup) this.phase = Phase.Auth;
    const who = this.records.who;
    switch (code) {
      case AuthCode.Ok:
        this.authOk = true;
        attrs.authMethod ??= 'trust';
        return true;
      case AuthCode.Sasl: {
        // PostgreSQL: mechanism names, each NUL-terminated, then a final NUL.
        // openGauss reuses code 10 for its sha256 method, whose body is binary.
        const mechs = saslMechanisms(this.reader.reset(data));
        if (mechs !== undefined) {
          this.sasl = true;
          attrs.authMethod = 'sasl';
          attrs.saslMechanisms = mechs;
        } else {
          attrs.authMethod = 'sha256';
          who.dbProduct ??= 'opengauss';
        }
        return true;
      }
      case AuthCode.SaslContinue:
        if (!this.sasl) {
          attrs.authMethod = 'md5-sha256';
          who.dbProduct ??= 'opengauss';
        }
        return true;
      case AuthCode.SaslFinal:
      case AuthCode.GssContinue:
        return true;
      default:
        attrs.authMethod = authNames[code] ?? `code-${code}`;
        if (code === AuthCode.GaussSm3 || code === AuthCode.GaussIam) who.dbProduct ??= 'opengauss';
        return true;
    }
  }

  /**
   * A PasswordMessage / SASLInitialResponse / SASLResponse / GSSResponse
   * ('p'); false when it belongs to no login. Only the SASL mechanism is kept.
   */
  password(body: Uint8Array, wireLen: number): boolean {
    const login = this.draft;
    if (login === undefined) return false;
    login.bytesIn += wireLen;
    if (this.sasl && login.attributes.saslMechanism === undefined) {
      // SASLInitialResponse: cstring mechanism | Int32 len | data.
      const r = this.reader.reset(body);
      const mech = r.cstringUtf8();
      if (r.ok) login.attributes.saslMechanism = mech;
    }
    return true;
  }

  /** A ParameterStatus: server version, application_name, client_encoding, the product. */
  parameterStatus(name: string, value: string): void {
    const who = this.records.who;
    if (name === 'server_version') who.serverVersion = value;
    else if (name === 'application_name') this.program(value);
    else if (name === 'client_encoding') this.charset = pickCharset(this.objectCharset, value);
    if (who.dbProduct === undefined) {
      if (/kingbase/i.test(value)) who.dbProduct = 'kingbase';
      else if (/opengauss/i.test(value)) who.dbProduct = 'opengauss';
      else if (/gaussdb/i.test(value)) who.dbProduct = 'gaussdb';
    }
    if (this.draft !== undefined) this.draft.attributes[`server.${name}`] = value;
  }

  /** BackendKeyData: the backend pid is the session id. */
  backendKey(pid: number): void {
    this.records.who.sessionId = String(pid);
  }

  /** NegotiateProtocolVersion: the minor version the server speaks. */
  negotiated(minor: number): void {
    if (this.draft !== undefined) this.draft.attributes.negotiatedMinor = String(minor);
  }

  /** Server bytes that belong to the login under way; false when none is. */
  addServerBytes(n: number): boolean {
    if (this.draft === undefined) return false;
    this.draft.bytesOut += n;
    return true;
  }

  /** ReadyForQuery: a login under way succeeded (true), or the session was already ready (false). */
  ready(wireLen: number, ts: Timestamp): boolean {
    const d = this.draft;
    if (d === undefined) return false;
    d.bytesOut += wireLen;
    this.phase = Phase.Ready;
    if (!this.authOk) d.attributes.authOk = 'not-seen';
    this.finish(ts, undefined);
    return true;
  }

  /** ErrorResponse during the login: it failed (true); false when no login is under way. */
  error(f: ErrorFields, wireLen: number, ts: Timestamp): boolean {
    const d = this.draft;
    if (d === undefined || this.phase === Phase.Ready) return false;
    d.bytesOut += wireLen;
    this.finish(ts, f);
    this.phase = Phase.Done;
    return true;
  }

  /**
   * The client sent a request while the login was under way: the end of the
   * login was lost to a gap. Its record goes out truncated, ok when the
   * server had accepted the authentication.
   */
  lost(): void {
    if (this.draft === undefined) return;
    this.phase = Phase.Ready;
    this.finish(undefined, undefined, true, this.authOk);
  }

  /** The capture ended during the login: its record goes out truncated. */
  close(): void {
    this.finish(undefined, undefined, true);
  }
}

/** The mechanism list of AuthenticationSASL, comma-joined, or undefined when the body is not one (openGauss sha256). */
function saslMechanisms(r: ByteReader): string | undefined {
  let mechs = '';
  while (r.remaining > 1) {
    const s = r.cstring();
    if (!r.ok || s.length === 0) return undefined;
    for (let i = 0; i < s.length; i++) if (s[i]! < 0x20 || s[i]! > 0x7e) return undefined;
    mechs += (mechs === '' ? '' : ',') + String.fromCharCode(...s);
  }
  return mechs !== '' && r.ok && r.remaining === 1 && r.u8() === 0 ? mechs : undefined;
}
