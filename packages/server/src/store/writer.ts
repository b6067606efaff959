// The appends of a SqliteStore made by a thread of their own (the option
// `writerThread`): the thread opens the same file and runs the store's
// append (group commit, hash chain, full-text fill) there, so that SQLite's
// inserts and commits no longer stop the event loop that receives agents,
// runs the stateful rules and answers the API. Everything else (searches,
// reports, retention, acknowledgements of alerts) stays on the caller's
// connection; WAL lets both connections work at once.
import type { Worker } from 'node:worker_threads';
import { DbtapError, type AuditEvent, type ErrorCode } from '@dbtap/core';
import { startWorker } from '../thread.js';
import { StoreErrorCodes } from './query.js';
import type { AppendOptions } from './types.js';

/** @internal What the writer thread is started with (its workerData). */
export interface StoreWriterSetup {
  storeWriter: {
    path: string;
    synchronous?: 'full' | 'normal';
    busyTimeoutMs?: number;
    integrity?: { key?: Uint8Array | string };
  };
}

/** @internal Messages to the writer thread. */
export type ToStoreWriter = { t: 'append'; id: number; events: readonly AuditEvent[]; position: AppendOptions['position'] } | { t: 'close' };

/** @internal Messages from the writer thread. */
export type FromStoreWriter = { t: 'done'; id: number } | { t: 'failed'; id: number; code: string; message: string };

interface Waiting {
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** @internal The caller's side of a store writer thread. */
export class StoreWriter {
  private worker: Worker | undefined;
  private nextId = 0;
  private readonly waiting = new Map<number, Waiting>();
  private closing: Promise<void> | undefined;

  constructor(private readonly setup: StoreWriterSetup) {}

  /** Sends an append; resolves once the thread's transaction holding it has committed. */
  append(events: readonly AuditEvent[], position: AppendOptions['position']): Promise<void> {
    if (this.closing !== undefined) return Promise.reject(new DbtapError(StoreErrorCodes.STORE_CLOSED, 'SqliteStore: closed'));
    const w = this.worker ?? this.start();
    const id = ++this.nextId;
    return new Promise<void>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      if (this.waiting.size === 1) w.ref();
      try {
        w.postMessage({ t: 'append', id, events, position } satisfies ToStoreWriter);
      } catch (err) {
        this.settle(id);
        reject(new DbtapError(StoreErrorCodes.BAD_RECORD, `append: the records cannot be sent to the store writer: ${(err as Error).message}`, undefined, { cause: err }));
      }
    });
  }

  /** Commits what was sent, closes the thread's connection and ends the thread. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      const w = this.worker;
      if (w === undefined) return resolve();
      w.ref();
      w.once('exit', () => resolve());
      w.postMessage({ t: 'close' } satisfies ToStoreWriter);
    });
    return this.closing;
  }

  private settle(id: number): Waiting | undefined {
    const p = this.waiting.get(id);
    this.waiting.delete(id);
    if (this.waiting.size === 0) this.worker?.unref();
    return p;
  }

  private start(): Worker {
    const w = startWorker(this.setup);
    this.worker = w;
    w.on('message', (m: FromStoreWriter) => {
      if (m.t === 'done') this.settle(m.id)?.resolve();
      else if (m.t === 'failed') this.settle(m.id)?.reject(new DbtapError(m.code as ErrorCode, m.message));
    });
    // A thread that dies fails what it held (not acknowledged: agents send it again); the next append starts a new one.
    const lost = (why: string): void => {
      if (this.worker !== w) return;
      this.worker = undefined;
      const held = [...this.waiting.values()];
      this.waiting.clear();
      for (const p of held) p.reject(new DbtapError(StoreErrorCodes.STORE_FAILED, `SqliteStore: the store writer thread ${why}`));
    };
    w.on('error', (err) => lost(`failed: ${err.message}`));
    w.on('exit', (code) => lost(`exited with code ${code}`));
    w.unref();
    return w;
  }
}
