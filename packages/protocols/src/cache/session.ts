// A Caché / IRIS flow is recognised, not decoded: the session reads nothing
// of the protocol, and at close gives the flow's one connection record
// (endpoints, timing, bytes each way, how it ended, TLS facts if the
// superserver connection was TLS), like any flow dbtap does not decode.
import type { CloseReason, Direction } from '@dbtap/core';
import { KitSession } from '../kit/session.js';
import { looksLikeTls } from '../tls/observer.js';
import type { SessionContext } from '../plugin.js';

/** Why the connection record says the flow was not decoded. */
const NOT_DECODED = 'protocol-not-decoded';

/** A session that only records the connection; see the module comment. */
export class CacheSession extends KitSession {
  constructor(ctx: SessionContext) {
    super(ctx, 'cache');
  }

  protected onData(dir: Direction, bytes: Uint8Array): void {
    if (looksLikeTls(bytes)) this.encrypted('tls');
    else this.opaque(NOT_DECODED);
    this.watchTls(dir, bytes);
  }

  protected onGap(): void {
    this.opaque(NOT_DECODED);
  }

  protected onClose(_reason: CloseReason): void {
    this.opaque(NOT_DECODED);
  }

  protected onBug(_dir: Direction): void {}
}
