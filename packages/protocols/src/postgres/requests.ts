// The frontend requests a PostgreSQL session keeps in flight, and the
// records they become: each queued operation (Query, Parse, Bind, Describe,
// Execute, Close, Sync, FunctionCall), the statement record under way with
// what its response adds up to (rows, counts, COPY, command tags), and the
// queue of them, answered in order.
import type { AuditEvent, ParamValue, Timestamp } from '@dbtap/core';
import { FifoPairing, type Pending, type RecordBuilder } from '../kit/index.js';
import type { FieldDescription } from './messages.js';

/** Kinds of queued operations. */
export const enum OpKind {
  Query,
  Execute,
  Function,
  Parse,
  Bind,
  Describe,
  Close,
  Sync,
}

/** A statement record under way: the record and what the response adds to it. */
export class Req {
  affected = 0;
  hasAffected = false;
  returned = 0;
  hasReturned = false;
  /** DataRows since the last RowDescription / CommandComplete. */
  segRows = 0;
  /** A RowDescription was seen for the current result. */
  hasResult = false;
  fields: readonly FieldDescription[] | undefined = undefined;
  resultFormats: readonly number[] | undefined = undefined;
  rows: (string | null)[][] | undefined = undefined;
  bytesOut = 0;
  completed = false;
  copy: string | undefined = undefined;
  copyBytes = 0;
  copyMessages = 0;
  tags: string | undefined = undefined;
  endTs: Timestamp | undefined = undefined;

  constructor(
    /** The record, started when the request was seen. */
    readonly ev: AuditEvent,
    /** Client bytes of the request (and of the Parse / Bind before an Execute). */
    public bytesIn: number,
  ) {}

  /** Rows of a result that ended without a CommandComplete count (error, suspension). */
  closeSegment(): void {
    if (this.segRows > 0) {
      this.returned += this.segRows;
      this.hasReturned = true;
      this.segRows = 0;
    }
  }

  /** A RowDescription starts a result: the first one names the record's columns (`keepRows`: collect first rows). */
  startResult(fields: readonly FieldDescription[] | undefined, columns: readonly string[] | undefined, keepRows: boolean): void {
    this.closeSegment();
    this.hasResult = true;
    if (this.ev.columns === undefined && fields !== undefined) {
      this.fields = fields;
      this.ev.columns = columns !== undefined ? columns.slice() : fields.map((f) => f.name);
      if (keepRows) this.rows = [];
    }
  }

  /** Applies a CommandComplete tag to the counters. */
  applyTag(tag: Tag): void {
    switch (tag.kind) {
      case TagCount.None:
        this.segRows = 0;
        return;
      case TagCount.Affected:
        return this.count(false, tag.n);
      case TagCount.Select:
        // Without a result: CREATE TABLE AS / SELECT INTO, rows written, none returned.
        return this.count(this.hasResult || this.segRows > 0, tag.n);
      case TagCount.Copy:
        return this.count(this.copy === 'out', tag.n);
    }
  }

  private count(returned: boolean, n: number): void {
    if (returned) {
      this.returned += n;
      this.hasReturned = true;
    } else {
      this.affected += n;
      this.hasAffected = true;
    }
  }

  /** Completes the record from what the response added up to and emits it (`op` carries the truncation flags). */
  finish(records: RecordBuilder, op: Pending): void {
    const ev = this.ev;
    if (this.endTs !== undefined) records.end(ev, this.endTs);
    if (this.hasAffected) ev.affectedRows = this.affected;
    if (this.hasReturned || ev.columns !== undefined) ev.rowsReturned = this.returned;
    if (this.rows !== undefined && this.rows.length > 0) ev.rows = this.rows;
    if (this.bytesIn > 0) ev.bytesIn = this.bytesIn;
    if (this.bytesOut > 0) ev.bytesOut = this.bytesOut;
    if (this.copy !== undefined) {
      const a = (ev.attributes ??= {});
      a.copy = this.copy;
      a.copyMessages = String(this.copyMessages);
      a.copyBytes = String(this.copyBytes);
    }
    if (this.tags !== undefined) (ev.attributes ??= {}).commandTag = this.tags;
    if (op.truncated) ev.truncated = true;
    if (op.gapBefore) ev.gapBefore = true;
    records.emit(ev);
  }
}

export interface Statement {
  /** The SQL text, cut to maxSqlLength. */
  readonly sql: string;
  /** The SQL was cut (size limit or a gap). */
  readonly cut: boolean;
  /** A copy of the Parse's query bytes, to reuse the text when the same bytes are parsed again. */
  readonly bytes: Uint8Array;
  /** Parameter type OIDs: the Parse's, then the server's ParameterDescription. */
  types: readonly number[];
  fields: readonly FieldDescription[] | undefined;
}

export interface Portal {
  readonly statement: string;
  readonly stmt: Statement | undefined;
  readonly params: ParamValue[];
  readonly resultFormats: readonly number[];
  fields: readonly FieldDescription[] | undefined;
}

/** One queued frontend request; `req` is set for those that become a record. */
export class Op implements Pending {
  truncated = false;
  gapBefore = false;
  /** Parse: the statement's SQL. */
  sql: string | undefined = undefined;
  /** Bind: the statement name. */
  statement = '';
  /** Describe / Close: 'S' statement or 'P' portal. */
  target = '';
  /** Wire bytes of a Parse / Bind / Describe / Close. */
  bytes = 0;
  /** Execute: the portal it runs. */
  portal: Portal | undefined = undefined;
  /** In flight when bytes of the server stream were lost: its response may be gone. */
  answerLost = false;

  constructor(
    readonly kind: OpKind,
    public ts: Timestamp,
    /** Parse: statement name; Bind: portal name; Describe / Close: the target's name. */
    readonly name: string,
    readonly req: Req | undefined,
  ) {}
}

/**
 * The frontend requests waiting for their responses, oldest first: the kit's
 * FIFO pairing with the walks the PostgreSQL message flow needs.
 */
export class OpQueue extends FifoPairing<Op> {
  /**
   * @param max most requests in flight
   * @param onEvict receives a request pushed out past `max`
   * @param keepRows results keep their first rows (maxRows > 0)
   */
  constructor(
    max: number,
    onEvict: (op: Op) => void,
    private readonly keepRows: boolean,
  ) {
    super(max, onEvict);
  }

  /** The head query / execute / function op, which receives result messages (none past a Sync). */
  resultTarget(): Op | undefined {
    for (let i = 0; i < this.length; i++) {
      const op = this.at(i)!;
      if (op.req !== undefined) {
        // An Execute of a described portal or statement: its columns are known before any RowDescription.
        if (op.kind === OpKind.Execute && op.req.ev.columns === undefined && op.portal !== undefined) {
          const fields = op.portal.fields ?? op.portal.stmt?.fields;
          if (fields !== undefined) op.req.startResult(fields, undefined, this.keepRows);
        }
        return op;
      }
      if (op.kind === OpKind.Sync) return undefined;
    }
    return undefined;
  }

  /** The first op that becomes a record. */
  headReq(): Op | undefined {
    for (let i = 0; i < this.length; i++) {
      const op = this.at(i)!;
      if (op.req !== undefined) return op;
    }
    return undefined;
  }

  /** The first op of `kind` before the next Sync. */
  find(kind: OpKind): Op | undefined {
    const op = this.at(this.indexOfKind(kind, OpKind.Sync, OpKind.Sync));
    return op !== undefined && op.kind === kind ? op : undefined;
  }

  /** Index of the first op of kind `a`, `b` or `c`; -1 when there is none. */
  indexOfKind(a: OpKind, b: OpKind, c: OpKind): number {
    for (let i = 0; i < this.length; i++) {
      const k = this.at(i)!.kind;
      if (k === a || k === b || k === c) return i;
    }
    return -1;
  }

  /** After an error the server ignores everything up to Sync (protocol docs, "Extended Query"). */
  discardUntilSync(): void {
    while (this.length > 0 && this.head()!.kind !== OpKind.Sync) this.shift();
  }

  /** Bytes of the server stream were lost: every op in flight may have lost its response. */
  answersLost(): void {
    for (let i = 0; i < this.length; i++) this.at(i)!.answerLost = true;
  }
}

/** What a CommandComplete tag counts. */
export const enum TagCount {
  /** No count (`CREATE TABLE`, `SET`, ...). */
  None,
  /** A count that is not applied (`MOVE`, or a verb not listed). */
  Ignored,
  /** Rows written: `INSERT oid rows`, `UPDATE rows`, `DELETE rows`, `MERGE rows`. */
  Affected,
  /** `SELECT rows`, `FETCH rows`: returned, or written by CREATE TABLE AS / SELECT INTO. */
  Select,
  /** `COPY rows`: returned by COPY TO, written by COPY FROM. */
  Copy,
}

/** A parsed CommandComplete tag (protocol docs, CommandComplete). */
export class Tag {
  kind = TagCount.None;
  n = 0;
  text = '';

  /** Parses `tag` into this object. */
  parse(tag: string): void {
    this.text = tag;
    const sp = tag.lastIndexOf(' ');
    this.kind = TagCount.None;
    this.n = 0;
    if (sp < 0) return;
    const n = Number(tag.slice(sp + 1));
    this.kind = TagCount.Ignored;
    if (!Number.isFinite(n)) return;
    this.n = n;
    switch (tag.slice(0, tag.indexOf(' '))) {
      case 'INSERT':
      case 'UPDATE':
      case 'DELETE':
      case 'MERGE':
        this.kind = TagCount.Affected;
        return;
      case 'SELECT':
      case 'FETCH':
        this.kind = TagCount.Select;
        return;
      case 'COPY':
        this.kind = TagCount.Copy;
        return;
    }
  }
}
