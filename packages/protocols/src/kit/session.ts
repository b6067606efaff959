// The base every protocol session stands on. It keeps the promises of the
// plugin contract once: a session never throws (an unexpected exception is
// counted as malformed and the direction resynchronised), counters of the
// framers and pairings fold into the session's stats, bytes after the stream
// turned encrypted or closed are counted as skipped, and a connection that
// ends without an explicit logout gets one logout record.
import type { AuditEvent, CloseReason, Direction, Timestamp } from '@dbtap/core';
import { TlsObserver } from '../tls/observer.js';
import { newSessionStats, type ProtocolSession, type SessionContext, type SessionStats } from '../plugin.js';
import type { BoundedMap } from './bounded-map.js';
import type { Framer, FramerCounters } from './framer.js';
import type { PairingCounters } from './pairing.js';
import { RecordBuilder } from './record.js';
import type { KitSessionState } from './session-state.js';

/** Something whose counters a {@link KitSession} folds into its stats. */
export type Tracked = Framer | { readonly counters: PairingCounters } | BoundedMap<unknown, unknown>;

/** Base class of protocol sessions built on the kit; see the module comment. */
export abstract class KitSession implements ProtocolSession {
  /** Counters of this session (framers' and pairings' folded in after each call). */
  readonly stats: SessionStats = newSessionStats();
  /** Builds and emits this session's records. */
  protected readonly records: RecordBuilder;
  /** Timestamp of the call being handled. */
  protected now: Timestamp = 0;
  /** A login succeeded on this connection (or the capture started after one). */
  protected loggedIn = false;
  /** An explicit logout (or the close record) was emitted. */
  protected loggedOut = false;
  private decoding = true;
  private closed = false;
  /** Set once the stream turned opaque: why, and what TLS showed in clear. */
  private opaqueAs: string | undefined;
  private tlsWatch: TlsObserver | undefined;
  private firstTs: Timestamp | undefined;
  private readonly bytes: [number, number] = [0, 0];
  private readonly tracked: Tracked[] = [];
  // The counters fold() sums after every call, sorted by kind once in track():
  // a per-chunk walk with no `in` tests on mixed shapes.
  private readonly framerCounters: FramerCounters[] = [];
  private readonly pairingCounters: PairingCounters[] = [];
  private readonly folded = { skipped: 0, malformed: 0, unmatchedReq: 0, unmatchedResp: 0 };

  /**
   * @param ctx the connection and where records go
   * @param dbType the `dbType` of every record
   */
  constructor(
    protected readonly ctx: SessionContext,
    dbType: string,
  ) {
    this.records = new RecordBuilder(ctx, dbType, this.stats);
  }

  /** The kit's part of a snapshot (see `session-state.ts`); undefined once the session stopped decoding. */
  protected kitState(): KitSessionState | undefined {
    if (!this.decoding) return undefined;
    return { records: this.records.emitted, midSession: this.records.midSession, loggedIn: this.loggedIn, who: { ...this.records.who } };
  }

  /** Takes the kit's part of a snapshot back: record numbering, identity, login. */
  protected restoreKit(k: KitSessionState): void {
    this.records.resume(k.records);
    this.records.midSession = k.midSession;
    this.loggedIn = k.loggedIn;
    Object.assign(this.records.who, k.who);
  }

  /** Framers, pairings and bounded maps whose counters fold into {@link KitSession.stats}. */
  protected track(...parts: Tracked[]): void {
    for (const t of parts) {
      this.tracked.push(t);
      if ('evictions' in t) continue;
      if ('resyncs' in t.counters) this.framerCounters.push(t.counters);
      else this.pairingCounters.push(t.counters);
    }
  }

  /** False once the stream turned encrypted or the session closed. */
  protected get active(): boolean {
    return this.decoding;
  }

  // ---- ProtocolSession -------------------------------------------------------

  /** In-order bytes in one direction; see {@link ProtocolSession.data}. */
  data(dir: Direction, bytes: Uint8Array, ts: Timestamp): void {
    this.firstTs ??= ts;
    this.bytes[dir] += bytes.length;
    if (!this.decoding) {
      this.stats.skippedBytes += bytes.length;
      if (!this.closed) this.watchTls(dir, bytes);
      return;
    }
    if (bytes.length === 0) return;
    this.now = ts;
    try {
      this.onData(dir, bytes);
    } catch {
      this.bug(dir);
    }
    this.fold();
  }

  /** Missing bytes in one direction; see {@link ProtocolSession.gap}. */
  gap(dir: Direction, nbytes: number, ts: Timestamp): void {
    this.now = ts;
    this.stats.gaps++;
    this.firstTs ??= ts;
    if (!this.decoding) {
      this.tlsWatch?.gap(dir);
      return;
    }
    try {
      this.onGap(dir, nbytes);
    } catch {
      this.bug(dir);
    }
    this.fold();
  }

  /** The connection ended; see {@link ProtocolSession.close}. */
  close(reason: CloseReason, ts: Timestamp): void {
    if (this.closed) return;
    this.now = ts;
    try {
      this.onClose(reason);
    } catch {
      this.stats.malformed++;
    }
    this.decoding = false;
    this.closed = true;
    if (this.opaqueAs !== undefined) this.connectionRecord(reason);
    this.fold();
  }

  /** Time passed with no traffic; protocols with timeouts act in {@link KitSession.onTick}. */
  tick(ts: Timestamp): void {
    if (!this.decoding) return;
    this.now = ts;
    try {
      this.onTick();
    } catch {
      this.stats.malformed++;
    }
    this.fold();
  }

  /** Protocol-specific counters (framers' oversized messages and resyncs, evictions, and the protocol's own). */
  counters(): Readonly<Record<string, number>> {
    let oversized = 0;
    let resyncs = 0;
    let evictions = 0;
    for (const t of this.tracked) {
      if ('evictions' in t) evictions += t.evictions;
      else if ('resyncs' in t.counters) {
        oversized += t.counters.oversized;
        resyncs += t.counters.resyncs;
      } else evictions += t.counters.evicted;
    }
    return { oversized, resyncs, evictions, ...this.protocolCounters() };
  }

  // ---- hooks -----------------------------------------------------------------

  /** Handles in-order bytes (`this.now` is their timestamp). May throw: the base counts and calls {@link KitSession.onBug}. */
  protected abstract onData(dir: Direction, bytes: Uint8Array): void;
  /** Handles missing bytes. */
  protected abstract onGap(dir: Direction, nbytes: number): void;
  /** Flushes what is pending as records. */
  protected abstract onClose(reason: CloseReason): void;
  /** Resynchronises `dir` after an unexpected exception. */
  protected abstract onBug(dir: Direction): void;
  /** Timeouts; nothing by default. */
  protected onTick(): void {}
  /** The protocol's own counters for {@link KitSession.counters}. */
  protected protocolCounters(): Record<string, number> {
    return {};
  }

  // ---- shared state changes --------------------------------------------------

  /**
   * The stream turned TLS-encrypted (STARTTLS-style upgrade or TLS from the
   * first byte): records say `tls`, and the rest is only watched for what the
   * TLS handshake shows in clear; see {@link KitSession.opaque}.
   */
  protected encrypted(how = 'tls'): void {
    this.records.who.tls = true;
    this.opaque(how);
  }

  /**
   * Decoding stops for good (encryption, an unknown protocol): the hooks are
   * no longer called, the rest of the stream is watched for a TLS handshake,
   * and at close one `connection` record says how the connection went
   * (`attributes.undecoded` = `how`, bytes each way, the TLS facts).
   */
  protected opaque(how: string): void {
    if (this.opaqueAs !== undefined) return;
    this.opaqueAs = how;
    this.decoding = false;
    this.tlsWatch = new TlsObserver();
    for (const t of this.tracked) if ('off' in t) t.off();
  }

  /** Offers bytes of an opaque stream to the TLS watcher (the base does this for every later chunk). */
  protected watchTls(dir: Direction, bytes: Uint8Array): void {
    const w = this.tlsWatch;
    if (w === undefined) return;
    try {
      w.data(dir, bytes);
    } catch {
      this.stats.malformed++;
      this.tlsWatch = undefined;
      return;
    }
    if (w.finished && !w.seen) this.tlsWatch = undefined; // not TLS: nothing more to learn
  }

  private connectionRecord(reason: CloseReason): void {
    const ev = this.records.start('connection', this.firstTs ?? this.now);
    this.records.end(ev, this.now);
    ev.status = 'ok';
    ev.bytesIn = this.bytes[0];
    ev.bytesOut = this.bytes[1];
    ev.closeReason = reason;
    ev.attributes = { undecoded: this.opaqueAs! };
    const w = this.tlsWatch;
    if (w !== undefined && w.seen) {
      ev.tls = true;
      ev.tlsFacts = { ...w.facts };
    }
    this.records.emit(ev);
  }

  /**
   * At close by FIN or RST, after a login and with no logout seen: one logout
   * record with `attributes.closeReason`, not yet emitted (the caller adds
   * what its protocol knows and emits it). Undefined when none is due.
   */
  protected logoutOnClose(reason: CloseReason): AuditEvent | undefined {
    if (this.loggedOut || !this.loggedIn || (reason !== 'fin' && reason !== 'rst')) return undefined;
    this.loggedOut = true;
    const ev = this.records.start('logout', this.now);
    ev.status = 'ok';
    ev.attributes = { closeReason: reason };
    return ev;
  }

  private bug(dir: Direction): void {
    // A decoder bug or an input nobody foresaw must not take the pipeline down.
    this.stats.malformed++;
    try {
      this.onBug(dir);
    } catch {
      this.stats.malformed++;
    }
  }

  private fold(): void {
    let skipped = 0;
    let malformed = 0;
    let req = 0;
    let resp = 0;
    const framers = this.framerCounters;
    for (let i = 0; i < framers.length; i++) {
      const c = framers[i]!;
      skipped += c.skippedBytes;
      malformed += c.malformed + c.oversized;
    }
    const pairings = this.pairingCounters;
    for (let i = 0; i < pairings.length; i++) {
      const c = pairings[i]!;
      req += c.unmatchedRequests;
      resp += c.unmatchedResponses;
    }
    const f = this.folded;
    if (skipped !== f.skipped || malformed !== f.malformed || req !== f.unmatchedReq || resp !== f.unmatchedResp) {
      this.stats.skippedBytes += skipped - f.skipped;
      this.stats.malformed += malformed - f.malformed;
      this.stats.unmatchedRequests += req - f.unmatchedReq;
      this.stats.unmatchedResponses += resp - f.unmatchedResp;
      f.skipped = skipped;
      f.malformed = malformed;
      f.unmatchedReq = req;
      f.unmatchedResp = resp;
    }
  }
}
