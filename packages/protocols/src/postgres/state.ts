// What a PostgreSQL session keeps beyond one request: the login, the
// transaction status, the named prepared statements and portals later
// messages refer to, and the snapshot of them that lets a later process
// continue the connection (kit/session-state.ts). The query protocol
// (session.ts) builds on this class.
import { decodeText } from '@dbtap/core';
import { BoundedMap, KitSession, SESSION_STATE_VERSION, isSessionSnapshot, pickCharset, sameBytes, type SessionSnapshot } from '../kit/index.js';
import type { SessionContext } from '../plugin.js';
import { Phase, PgLogin } from './login.js';
import type { Portal, Statement } from './requests.js';

/** Most prepared statements / portals remembered per session (oldest dropped beyond). */
const MAX_NAMED = 4096;

/** The protocol part of a PostgreSQL session snapshot. */
interface PostgresState {
  charset: string;
  txStatus: string;
  statements: Array<[string, Statement]>;
  portals: Array<[string, Portal]>;
}

/** The state of a PostgreSQL session that outlives its requests; see the module comment. */
export abstract class PgState extends KitSession {
  protected readonly login: PgLogin;
  protected readonly statements = new BoundedMap<string, Statement>(MAX_NAMED);
  protected readonly portals = new BoundedMap<string, Portal>(MAX_NAMED);

  /** Transaction status from the last ReadyForQuery: 'I' idle, 'T' in a transaction, 'E' failed transaction. */
  txStatus = 'I';

  /** @param ctx the connection and where its records go */
  constructor(ctx: SessionContext) {
    super(ctx, 'postgres');
    this.login = new PgLogin(this.records, ctx.options.charset, ctx.midStream);
    this.track(this.statements, this.portals);
  }

  // ---- snapshot / restore (kit/session-state.ts) ---------------------------

  /**
   * The connection's context for a later process: identity, charset,
   * transaction status, named prepared statements and portals. None during
   * the login or once encrypted. Requests waiting for their responses are
   * not kept: their records are lost at a restart.
   */
  snapshot(): SessionSnapshot | undefined {
    const kit = this.kitState();
    if (kit === undefined || this.login.phase !== Phase.Ready) return undefined;
    const statements: Array<[string, Statement]> = [];
    for (const k of this.statements.keys()) statements.push([k, this.statements.get(k)!]);
    const portals: Array<[string, Portal]> = [];
    for (const k of this.portals.keys()) portals.push([k, this.portals.get(k)!]);
    const data: PostgresState = { charset: this.login.charset, txStatus: this.txStatus, statements, portals };
    return { v: SESSION_STATE_VERSION, protocol: 'postgres', kit, data };
  }

  /** Continues from a {@link PgState.snapshot}; false (nothing changed) for anything else. */
  restore(snapshot: SessionSnapshot): boolean {
    if (!isSessionSnapshot(snapshot, 'postgres')) return false;
    const d = snapshot.data as Partial<PostgresState> | null;
    if (d === null || typeof d !== 'object' || typeof d.charset !== 'string' || !Array.isArray(d.statements) || !Array.isArray(d.portals)) return false;
    this.restoreKit(snapshot.kit);
    // the audit object's charset, when one is configured now, still wins
    this.login.charset = pickCharset(this.ctx.options.charset, d.charset);
    if (typeof d.txStatus === 'string') this.txStatus = d.txStatus;
    const plain = (e: unknown): e is [string, Record<string, unknown>] => Array.isArray(e) && typeof e[0] === 'string' && e[1] !== null && typeof e[1] === 'object';
    for (const e of d.statements) if (plain(e) && typeof e[1].sql === 'string' && e[1].bytes instanceof Uint8Array && Array.isArray(e[1].types)) this.statements.set(e[0], e[1] as unknown as Statement);
    for (const e of d.portals) if (plain(e) && typeof e[1].statement === 'string' && Array.isArray(e[1].params)) this.portals.set(e[0], e[1] as unknown as Portal);
    this.login.phase = Phase.Ready;
    return true;
  }

  // ---- named statements and portals --------------------------------------

  protected override protocolCounters(): Record<string, number> {
    return { statementEvictions: this.statements.evictions, portalEvictions: this.portals.evictions };
  }

  /**
   * The statement a Parse defines. Clients parse the same text again and
   * again (the unnamed statement of every extended query): when the bytes
   * repeat, the text decoded last time is reused.
   */
  protected parsed(name: string, sqlBytes: Uint8Array, paramTypes: readonly number[], truncated: boolean): Statement {
    const prev = this.statements.get(name);
    let st: Statement;
    if (prev !== undefined && !truncated && !prev.cut && sameBytes(sqlBytes, 0, sqlBytes.length, prev.bytes)) {
      st = { sql: prev.sql, cut: false, bytes: prev.bytes, types: paramTypes, fields: undefined };
    } else {
      const [sql, cut] = this.records.cutSql(decodeText(sqlBytes, this.login.charset));
      st = { sql, cut: cut || truncated, bytes: sqlBytes.slice(), types: paramTypes, fields: undefined };
    }
    this.remember(this.statements, name, st);
    return st;
  }

  /** Stores a named statement or portal; a name defined again counts as new (oldest evicted first). */
  protected remember<V>(map: BoundedMap<string, V>, name: string, v: V): void {
    map.renew(name, v);
  }
}
