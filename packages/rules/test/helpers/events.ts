// Audit-record builders for rule tests.
import type { AuditEvent } from '@dbtap/core';

let seq = 0;

/** 2026-01-05 (a Monday) 10:00:00 UTC, in microseconds. */
export const MONDAY_10AM = Date.UTC(2026, 0, 5, 10, 0, 0) * 1000;

/** Seconds to microseconds. */
export const s = (n: number): number => Math.round(n * 1_000_000);

/** A statement record with sensible defaults; `over` replaces any field. */
export function statement(sql: string, over: Partial<AuditEvent> = {}): AuditEvent {
  seq++;
  return {
    id: `f1:${seq}`,
    kind: 'statement',
    flowId: 'f1',
    ts: MONDAY_10AM,
    client: { ip: '10.1.2.3', port: 40000 },
    server: { ip: '10.0.0.5', port: 3306 },
    dbType: 'mysql',
    user: 'app',
    database: 'shop',
    clientProgram: 'billing-service',
    command: 'COM_QUERY',
    sql,
    status: 'ok',
    ...over,
  };
}

/** A login record (successful unless `over.status` says otherwise). */
export function login(over: Partial<AuditEvent> = {}): AuditEvent {
  seq++;
  return {
    id: `f${seq}:0`,
    kind: 'login',
    flowId: `f${seq}`,
    ts: MONDAY_10AM,
    client: { ip: '10.1.2.3', port: 40000 + (seq % 20000) },
    server: { ip: '10.0.0.5', port: 3306 },
    dbType: 'mysql',
    user: 'app',
    clientProgram: 'mysql',
    status: 'ok',
    ...over,
  };
}
