// Separation of duties for the HTTP API. Three roles, as audit regulations
// ask of a database audit system:
//   sysadmin  runs the service: audit objects, health, metrics;
//   secadmin  security policy: rule groups (and the rules and notifications
//             they drive);
//   auditor   reads records, sessions, alerts, reports and the system log,
//             and acknowledges alerts.
// No role can change or delete an audit record: the API has no such route.
// Every API user holds one token and one role. Tokens are kept as SHA-256
// digests and compared in constant time. Each administrative action and each
// refused request is appended to the system log, which only the auditor reads.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { ServerErrorCodes } from '../errors.js';
import { appendFileSync, existsSync, openSync, readSync, closeSync, statSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { DbtapError } from '@dbtap/core';
import { checkKeys } from '../validate.js';

/** A role of the API. */
export type ApiRole = 'sysadmin' | 'secadmin' | 'auditor';

/** Every role, in a stable order. */
export const API_ROLES: readonly ApiRole[] = ['sysadmin', 'secadmin', 'auditor'];

/** Error codes of access control; a view of {@link ServerErrorCodes}. */
export const AccessErrorCodes = {
  UNAUTHENTICATED: ServerErrorCodes.UNAUTHENTICATED,
  FORBIDDEN: ServerErrorCodes.FORBIDDEN,
} as const;

/** An API user as configured: a name, one role, and the token's SHA-256 digest (hex). */
export interface ApiUser {
  /** Name shown in the system log and in acknowledgements. */
  name: string;
  /** The one role the user holds. */
  role: ApiRole;
  /** Lowercase hex SHA-256 of the token. */
  tokenSha256: string;
}

/** The SHA-256 hex digest of a token, as kept in the configuration. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** A new random token (256 bits, base64url). */
export function newToken(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * Which roles may call each route and method. Routes absent here need no
 * token (`/healthz`, `/api/openapi.json`). A route missing from this table
 * but present in the API is refused to everyone: new routes must be placed.
 */
export const ROUTE_ROLES: Readonly<Record<string, Readonly<Record<string, readonly ApiRole[]>>>> = {
  '/api/records': { GET: ['auditor'] },
  '/api/sessions': { GET: ['auditor'] },
  '/api/sessions/{id}': { GET: ['auditor'] },
  '/api/alerts': { GET: ['auditor', 'secadmin'] },
  '/api/alerts/{id}/ack': { POST: ['auditor'] },
  '/api/reports/{kind}': { GET: ['auditor'] },
  '/api/stats': { GET: ['sysadmin', 'auditor'] },
  '/api/objects': { GET: ['sysadmin', 'secadmin', 'auditor'], PUT: ['sysadmin'] },
  '/api/rule-groups': { GET: ['sysadmin', 'secadmin', 'auditor'], PUT: ['secadmin'] },
  '/api/system-log': { GET: ['auditor'] },
  '/metrics': { GET: ['sysadmin'] },
};

/** Routes anyone may read. */
export const PUBLIC_ROUTES: ReadonlySet<string> = new Set(['/healthz', '/api/openapi.json']);

/** Who made a request: a user, or nobody when access control is off. */
export interface Caller {
  /** User name (`anonymous` when access control is off). */
  readonly name: string;
  /** Role, absent when access control is off. */
  readonly role?: ApiRole;
}

/** One line of the system log. */
export interface SystemLogEntry {
  /** ISO 8601 time. */
  ts: string;
  /** Who: user name, or `system` for the service itself. */
  actor: string;
  /** The actor's role. */
  role?: string;
  /** What: e.g. `objects.replace`, `rule-groups.replace`, `alert.ack`, `access.denied`, `service.start`. */
  action: string;
  /** Remote address of the request. */
  remote?: string;
  /** Whether it was done (false for refusals and failures). */
  ok: boolean;
  /** Details (counts, ids, the reason of a refusal). */
  detail?: Record<string, unknown>;
}

/**
 * The system log: an append-only NDJSON file of administrative actions,
 * readable by the auditor through `/api/system-log`. Each line is written
 * with one `appendFileSync` before the action is answered.
 */
export class SystemLog {
  /** @param file The log file (created when missing); undefined keeps entries in memory (tests, embedding). */
  constructor(private readonly file?: string) {}
  private readonly memory: SystemLogEntry[] = [];

  /** Appends an entry (time filled in). */
  write(entry: Omit<SystemLogEntry, 'ts'>): void {
    const e: SystemLogEntry = { ts: new Date().toISOString(), ...entry };
    if (this.file === undefined) {
      this.memory.push(e);
      return;
    }
    appendFileSync(this.file, `${JSON.stringify(e)}\n`, { mode: 0o640 });
  }

  /** The newest `limit` entries (at most), oldest first; reads at most the last 16 MiB of the file. */
  tail(limit = 1000): SystemLogEntry[] {
    if (this.file === undefined) return this.memory.slice(-limit);
    if (!existsSync(this.file)) return [];
    const size = statSync(this.file).size;
    const span = Math.min(size, 16 << 20);
    const buf = Buffer.alloc(span);
    const fd = openSync(this.file, 'r');
    try {
      readSync(fd, buf, 0, span, size - span);
    } finally {
      closeSync(fd);
    }
    const lines = buf.toString('utf8').split('\n');
    if (span < size) lines.shift(); // a partial first line
    const out: SystemLogEntry[] = [];
    for (const l of lines) {
      if (l.trim() === '') continue;
      try {
        out.push(JSON.parse(l) as SystemLogEntry);
      } catch {
        out.push({ ts: '', actor: 'system', action: 'log.unreadable-line', ok: false, detail: { line: l.slice(0, 200) } });
      }
    }
    return out.slice(-limit);
  }
}

/**
 * Access control of the API: users with one role each. With no users, the
 * API is open (every caller is `anonymous`): only acceptable on loopback,
 * which the server configuration enforces.
 */
export class AccessControl {
  private readonly byDigest = new Map<string, ApiUser>();

  /** @param users Configured users (names and token digests unique). */
  constructor(readonly users: readonly ApiUser[]) {
    for (const u of users) this.byDigest.set(u.tokenSha256, u);
  }

  /** True when at least one user is configured. */
  get enabled(): boolean {
    return this.users.length > 0;
  }

  /**
   * Identifies the caller from `Authorization: Bearer <token>` and checks
   * the role against {@link ROUTE_ROLES}.
   * @throws DbtapError `DBTAP_E_UNAUTHENTICATED` (401) or `DBTAP_E_FORBIDDEN` (403).
   */
  authorize(req: IncomingMessage, template: string, method: string): Caller {
    if (PUBLIC_ROUTES.has(template)) return { name: 'anonymous' };
    if (!this.enabled) return { name: 'anonymous' };
    const header = req.headers.authorization ?? '';
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (m === null) throw new DbtapError(AccessErrorCodes.UNAUTHENTICATED, 'a bearer token is required (Authorization: Bearer <token>)');
    const user = this.find(m[1]!);
    if (user === undefined) throw new DbtapError(AccessErrorCodes.UNAUTHENTICATED, 'unknown token');
    const allowed = ROUTE_ROLES[template]?.[method] ?? [];
    if (!allowed.includes(user.role)) {
      throw new DbtapError(AccessErrorCodes.FORBIDDEN, `role ${user.role} may not ${method} ${template}${allowed.length > 0 ? ` (allowed: ${allowed.join(', ')})` : ''}`, { user: user.name, role: user.role });
    }
    return { name: user.name, role: user.role };
  }

  private find(token: string): ApiUser | undefined {
    const digest = Buffer.from(hashToken(token), 'hex');
    let found: ApiUser | undefined;
    // compare against every user so the time taken does not depend on which one matches
    for (const u of this.users) {
      const d = Buffer.from(u.tokenSha256, 'hex');
      if (d.length === digest.length && timingSafeEqual(d, digest)) found = u;
    }
    return found;
  }
}

/**
 * Validates configured users: `{ name, role, token }` (plain token, hashed
 * here) or `{ name, role, tokenSha256 }`. `fail` names the bad key.
 */
export function parseApiUsers(value: unknown, path: string, fail: (path: string, message: string) => never): ApiUser[] {
  if (!Array.isArray(value)) fail(path, 'expected a list of users');
  const names = new Set<string>();
  const digests = new Set<string>();
  return value.map((v: unknown, i: number) => {
    const p = `${path}[${i}]`;
    if (v === null || typeof v !== 'object' || Array.isArray(v)) fail(p, 'expected { name, role, token | tokenSha256 }');
    const o = v as Record<string, unknown>;
    checkKeys(o, ['name', 'role', 'token', 'tokenSha256'], p, fail, 'field');
    if (typeof o.name !== 'string' || !/^[A-Za-z0-9_.@-]{1,64}$/.test(o.name)) fail(`${p}.name`, 'expected 1 to 64 characters of A-Z a-z 0-9 _ . @ -');
    if (names.has(o.name)) fail(`${p}.name`, `duplicate user ${o.name}`);
    names.add(o.name);
    if (!(API_ROLES as readonly unknown[]).includes(o.role)) fail(`${p}.role`, `expected one of ${API_ROLES.join(', ')}`);
    let digest: string;
    if (o.token !== undefined) {
      if (typeof o.token !== 'string' || o.token.length < 16) fail(`${p}.token`, 'expected a token of at least 16 characters');
      if (o.tokenSha256 !== undefined) fail(`${p}.tokenSha256`, 'give token or tokenSha256, not both');
      digest = hashToken(o.token);
    } else {
      if (typeof o.tokenSha256 !== 'string' || !/^[0-9a-fA-F]{64}$/.test(o.tokenSha256)) fail(`${p}.tokenSha256`, 'expected 64 hex digits (sha256 of the token)');
      digest = o.tokenSha256.toLowerCase();
    }
    if (digests.has(digest)) fail(p, 'two users share a token');
    digests.add(digest);
    return { name: o.name, role: o.role as ApiRole, tokenSha256: digest };
  });
}
