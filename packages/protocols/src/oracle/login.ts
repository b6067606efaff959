// What the two AUTH calls and the server's answer say about the session
// (O5LOGON / O3LOGON key/value lists; see ttc.ts `keyValues`). Secret keys
// never carry a value here: `keyValues` drops them.
import type { AuditEvent } from '@dbtap/core';
import type { SessionIdentity } from '../kit/index.js';
import { versionText } from './values.js';

type Pairs = ReadonlyMap<string, string | undefined>;

function value(p: Pairs, key: string): string | undefined {
  const v = p.get(key);
  return v === undefined || v === '' ? undefined : v;
}

/**
 * AUTH phase 1: the client's facts onto the session identity (before the
 * login record is started, which copies it). Returns the terminal, which
 * only the login record carries.
 */
export function applyAuthRequest(p: Pairs, who: SessionIdentity): string | undefined {
  const program = value(p, 'AUTH_PROGRAM_NM');
  const machine = value(p, 'AUTH_MACHINE');
  const osUser = value(p, 'AUTH_SID');
  const pid = value(p, 'AUTH_PID');
  if (program !== undefined) who.clientProgram = program;
  if (machine !== undefined) who.clientHost = machine;
  if (osUser !== undefined) who.osUser = osUser;
  if (pid !== undefined) who.clientPid = pid;
  return value(p, 'AUTH_TERMINAL');
}

/**
 * The server's answer to AUTH phase 2: session id and serial number
 * (`sessionId` "sid,serial"), the packed version number (`serverVersion`),
 * and the database and instance names onto the login record.
 */
export function applyAuthAnswer(p: Pairs, who: SessionIdentity, ev: AuditEvent): void {
  const sid = value(p, 'AUTH_SESSION_ID');
  const serial = value(p, 'AUTH_SERIAL_NUM');
  if (sid !== undefined) who.sessionId = serial !== undefined ? `${sid},${serial}` : sid;
  const vn = value(p, 'AUTH_VERSION_NO');
  const v = vn !== undefined && /^\d+$/.test(vn) ? versionText(Number(vn)) : undefined;
  if (v !== undefined) who.serverVersion = v;
  const a = (ev.attributes ??= {});
  const vs = value(p, 'AUTH_VERSION_STRING');
  if (vs !== undefined) a.versionString = vs.trim();
  const dbName = value(p, 'AUTH_DBNAME');
  if (dbName !== undefined) a.dbName = dbName;
  const inst = value(p, 'AUTH_INSTANCENAME') ?? value(p, 'AUTH_SC_INSTANCE_NAME');
  if (inst !== undefined) a.instance = inst;
  if (sid !== undefined) a.sessionId = sid;
  if (serial !== undefined) a.serialNum = serial;
}
