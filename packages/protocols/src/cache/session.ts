// A Caché / IRIS flow is recognised, not decoded: the session counts the
// bytes each way and emits no record (the connection record of an undecoded
// flow is produced by the pipeline, not by protocol sessions).
import type { CloseReason, Direction } from '@dbtap/core';
import { KitSession } from '../kit/session.js';
import type { SessionContext } from '../plugin.js';

/** A session that only counts; see the module comment. */
export class CacheSession extends KitSession {
  private readonly bytes = [0, 0];
  private readonly missing = [0, 0];

  constructor(ctx: SessionContext) {
    super(ctx, 'cache');
  }

  protected onData(dir: Direction, bytes: Uint8Array): void {
    this.bytes[dir] += bytes.length;
  }

  protected onGap(dir: Direction, nbytes: number): void {
    this.missing[dir] += nbytes;
  }

  protected onClose(_reason: CloseReason): void {}

  protected onBug(_dir: Direction): void {}

  protected override protocolCounters(): Record<string, number> {
    return { bytesToServer: this.bytes[0]!, bytesToClient: this.bytes[1]!, missingToServer: this.missing[0]!, missingToClient: this.missing[1]! };
  }
}
