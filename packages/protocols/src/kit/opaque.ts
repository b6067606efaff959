// The session of a flow that no decoder reads (an unknown protocol, TLS from
// the first byte to a server dbtap audits): it decodes nothing, watches for a
// TLS handshake, and at close gives the one `connection` record an auditor
// expects for every connection to an audited server.
import type { CloseReason, Direction } from '@dbtap/core';
import type { ProtocolSession, SessionContext } from '../plugin.js';
import { looksLikeTls } from '../tls/observer.js';
import { KitSession } from './session.js';

class OpaqueSession extends KitSession {
  private started = false;

  constructor(ctx: SessionContext, dbType: string) {
    super(ctx, dbType);
  }

  protected onData(dir: Direction, bytes: Uint8Array): void {
    // The first bytes say whether this is TLS; either way decoding ends here
    // and the base watches the rest (this chunk included).
    if (this.started) return;
    this.started = true;
    if (looksLikeTls(bytes)) this.encrypted('tls');
    else this.opaque('unknown-protocol');
    this.watchTls(dir, bytes);
  }

  protected onGap(): void {}

  protected onClose(_reason: CloseReason): void {
    if (!this.started) this.opaque('unknown-protocol');
  }

  protected onBug(): void {}
}

/**
 * A session for a flow whose protocol is unknown or that is TLS from its
 * first byte: it emits one `connection` record at close (endpoints, timing,
 * bytes each way, how it ended, TLS facts seen in clear). `dbType` is what
 * the records say the server is (`unknown` when nothing says).
 */
export function createOpaqueSession(ctx: SessionContext, dbType = 'unknown'): ProtocolSession {
  return new OpaqueSession(ctx, dbType);
}
