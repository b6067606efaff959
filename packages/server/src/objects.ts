// Audit objects: the monitored databases. Each names the server endpoints
// it covers (addresses or CIDR blocks, and ports), the wire protocol to
// decode them with, the text charset, the rule group that judges its
// records, and who owns it. The pipeline consults an AuditObjectTable when a
// connection opens; a table is immutable, so swapping in a new one applies
// changes to new connections without a restart while open ones keep theirs.
import { DbtapError, isKnownCharset, parseIp } from '@dbtap/core';
import { checkKeys } from './validate.js';

/** A monitored database. */
export interface AuditObjectDef {
  /** Stable id, stored in records' `auditObjectId`. 1 to 128 characters of `[A-Za-z0-9_.:-]`. */
  id: string;
  /** Display name. */
  name?: string;
  /** False stops auditing its traffic without forgetting it. Default true. */
  enabled?: boolean;
  /** Wire protocol (a decoder name: `mysql`, `postgres`, ...). Connections to the object are decoded with it, without detection. */
  dbType: string;
  /** Server product version, as the owner knows it (informational). */
  version?: string;
  /** Server addresses: IPv4/IPv6 addresses or CIDR blocks. Empty or absent: any address. */
  addresses?: string[];
  /** Server TCP ports (at least one). */
  ports: number[];
  /** Rule group that evaluates its records; absent: every enabled rule. */
  ruleGroup?: string;
  /** Text charset of the database when it differs from what the protocol announces (e.g. `gbk`). */
  charset?: string;
  /** Department that owns the database. */
  department?: string;
  /** Person or team responsible. */
  owner?: string;
  /** Ids of related objects (replicas, the application database of a reporting copy). */
  related?: string[];
  /** Free text. */
  notes?: string;
}

/** What the pipeline needs to know about the object a connection belongs to. */
export interface ObjectRoute {
  /** The object. */
  readonly object: AuditObjectDef;
  /** Whether its traffic is audited. */
  readonly enabled: boolean;
}

const ID_RE = /^[A-Za-z0-9_.:-]{1,128}$/;
const FIELDS = ['id', 'name', 'enabled', 'dbType', 'version', 'addresses', 'ports', 'ruleGroup', 'charset', 'department', 'owner', 'related', 'notes'] as const;
// `host`/`port` are accepted on input as the one-address, one-port shorthand.
const SHORTHAND = ['host', 'port'] as const;

/** Reports a validation failure at `path` (the caller decides the error code). */
export type ValidationFailure = (path: string, message: string) => never;

function text(o: Record<string, unknown>, key: string, path: string, fail: ValidationFailure, max: number): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || v === '' || v.length > max) fail(`${path}.${key}`, `expected a non-empty string of at most ${max} characters`);
  return v;
}

function validPort(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 65535;
}

/** A parsed address or CIDR block. */
interface Block {
  readonly bytes: Uint8Array;
  readonly bits: number;
}

function parseBlock(text: string): Block | undefined {
  const slash = text.indexOf('/');
  const bytes = parseIp(slash < 0 ? text : text.slice(0, slash));
  if (bytes === undefined) return undefined;
  const max = bytes.length * 8;
  if (slash < 0) return { bytes, bits: max };
  const tail = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(tail) || Number(tail) > max) return undefined;
  return { bytes, bits: Number(tail) };
}

function inBlock(addr: Uint8Array, b: Block): boolean {
  if (addr.length !== b.bytes.length) return false;
  let bits = b.bits;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((addr[i]! & mask) !== (b.bytes[i]! & mask)) return false;
  }
  return true;
}

/**
 * Validates one audit object (from a config file or an API body) and returns
 * it in canonical form: `addresses` and `ports` lists (the `host`/`port`
 * shorthand folded in), `enabled` explicit. `fail` is called with the path
 * of the first bad field.
 */
export function validateAuditObject(value: unknown, path: string, fail: ValidationFailure): AuditObjectDef {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) fail(path, 'expected an object');
  const o = value as Record<string, unknown>;
  checkKeys(o, [...FIELDS, ...SHORTHAND], path, fail, 'field');
  const id = text(o, 'id', path, fail, 128);
  if (id === undefined) fail(`${path}.id`, 'required');
  if (!ID_RE.test(id)) fail(`${path}.id`, 'expected 1 to 128 characters of A-Z a-z 0-9 _ . : -');
  const dbType = text(o, 'dbType', path, fail, 64);
  if (dbType === undefined) fail(`${path}.dbType`, 'required (the protocol, e.g. mysql or postgres)');
  if (o.enabled !== undefined && typeof o.enabled !== 'boolean') fail(`${path}.enabled`, 'expected true or false');

  const addresses: string[] = [];
  if (o.addresses !== undefined) {
    if (!Array.isArray(o.addresses) || o.addresses.length > 1024) fail(`${path}.addresses`, 'expected a list of IP addresses or CIDR blocks');
    o.addresses.forEach((a: unknown, i: number) => {
      if (typeof a !== 'string' || parseBlock(a) === undefined) fail(`${path}.addresses[${i}]`, 'expected an IPv4/IPv6 address or CIDR block');
      addresses.push(a);
    });
  }
  if (o.host !== undefined) {
    if (typeof o.host !== 'string' || parseBlock(o.host) === undefined) fail(`${path}.host`, 'expected an IPv4/IPv6 address or CIDR block');
    if (!addresses.includes(o.host)) addresses.push(o.host);
  }
  const ports: number[] = [];
  if (o.ports !== undefined) {
    if (!Array.isArray(o.ports) || o.ports.length > 1024) fail(`${path}.ports`, 'expected a list of ports');
    o.ports.forEach((p: unknown, i: number) => {
      if (!validPort(p)) fail(`${path}.ports[${i}]`, 'expected an integer from 1 to 65535');
      if (!ports.includes(p)) ports.push(p);
    });
  }
  if (o.port !== undefined) {
    if (!validPort(o.port)) fail(`${path}.port`, 'expected an integer from 1 to 65535');
    if (!ports.includes(o.port)) ports.push(o.port);
  }
  if (ports.length === 0) fail(`${path}.ports`, 'required: at least one server port');

  const def: AuditObjectDef = { id, enabled: o.enabled !== false, dbType, ports };
  if (addresses.length > 0) def.addresses = addresses;
  const name = text(o, 'name', path, fail, 1024);
  if (name !== undefined) def.name = name;
  const version = text(o, 'version', path, fail, 128);
  if (version !== undefined) def.version = version;
  const ruleGroup = text(o, 'ruleGroup', path, fail, 128);
  if (ruleGroup !== undefined) def.ruleGroup = ruleGroup;
  const charset = text(o, 'charset', path, fail, 64);
  if (charset !== undefined) {
    if (!isKnownCharset(charset)) fail(`${path}.charset`, `unknown charset '${charset}'`);
    def.charset = charset;
  }
  for (const k of ['department', 'owner'] as const) {
    const v = text(o, k, path, fail, 1024);
    if (v !== undefined) def[k] = v;
  }
  const notes = text(o, 'notes', path, fail, 65536);
  if (notes !== undefined) def.notes = notes;
  if (o.related !== undefined) {
    if (!Array.isArray(o.related) || !o.related.every((r) => typeof r === 'string' && ID_RE.test(r))) fail(`${path}.related`, 'expected a list of object ids');
    def.related = [...(o.related as string[])];
  }
  return def;
}

/**
 * Validates a whole list: each object, unique ids, and that no two enabled
 * objects claim the same address and port (a connection must belong to one
 * object). `related` ids must name objects of the list.
 */
export function validateAuditObjects(value: unknown, path: string, fail: ValidationFailure): AuditObjectDef[] {
  if (!Array.isArray(value)) fail(path, 'expected a list of audit objects');
  if (value.length > 10_000) fail(path, 'more than 10000 audit objects');
  const out = value.map((v, i) => validateAuditObject(v, `${path}[${i}]`, fail));
  const ids = new Map<string, number>();
  out.forEach((o, i) => {
    if (ids.has(o.id)) fail(`${path}[${i}].id`, `duplicate id ${JSON.stringify(o.id)}`);
    ids.set(o.id, i);
  });
  const claimed = new Map<string, string>();
  out.forEach((o, i) => {
    if (o.enabled === false) return;
    for (const port of o.ports) {
      for (const a of o.addresses ?? ['*']) {
        const key = `${a}|${port}`;
        const other = claimed.get(key);
        if (other !== undefined) fail(`${path}[${i}]`, `${a === '*' ? 'any address' : a} port ${port} is already audited by '${other}'`);
        claimed.set(key, o.id);
      }
    }
  });
  out.forEach((o, i) => {
    o.related?.forEach((r, j) => {
      if (!ids.has(r)) fail(`${path}[${i}].related[${j}]`, `no audit object '${r}'`);
    });
  });
  return out;
}

interface Entry {
  readonly route: ObjectRoute;
  readonly blocks: readonly Block[];
}

/**
 * The audit objects in force, indexed by port. {@link resolve} finds the
 * object of a server endpoint: among the objects listing that port, the one
 * with the most specific matching address block wins; an object without
 * addresses matches any address and loses to every specific one.
 */
export class AuditObjectTable {
  /** The objects, as given. */
  readonly objects: readonly AuditObjectDef[];
  private readonly byPort = new Map<number, Entry[]>();
  private readonly byId = new Map<string, AuditObjectDef>();

  /** @param objects A list already checked by {@link validateAuditObjects}. */
  constructor(objects: readonly AuditObjectDef[] = []) {
    this.objects = objects;
    for (const object of objects) {
      this.byId.set(object.id, object);
      const entry: Entry = { route: { object, enabled: object.enabled !== false }, blocks: (object.addresses ?? []).map((a) => parseBlock(a)!) };
      for (const p of object.ports) {
        let list = this.byPort.get(p);
        if (list === undefined) this.byPort.set(p, (list = []));
        list.push(entry);
      }
    }
  }

  /** Every port some object listens on. */
  ports(): number[] {
    return [...this.byPort.keys()];
  }

  /** The object with this id. */
  get(id: string): AuditObjectDef | undefined {
    return this.byId.get(id);
  }

  /** The object auditing the server endpoint `ip:port`, if any (disabled ones included: check `enabled`). */
  resolve(ip: string, port: number): ObjectRoute | undefined {
    const list = this.byPort.get(port);
    if (list === undefined) return undefined;
    const addr = parseIp(ip);
    let best: ObjectRoute | undefined;
    let bestBits = -1;
    for (const e of list) {
      if (e.blocks.length === 0) {
        if (bestBits < 0) {
          best = e.route;
          bestBits = 0;
        }
        continue;
      }
      if (addr === undefined) continue;
      for (const b of e.blocks) {
        // an enabled object beats a disabled one of the same specificity
        if (inBlock(addr, b) && (b.bits > bestBits || (b.bits === bestBits && e.route.enabled && !best!.enabled))) {
          best = e.route;
          bestBits = b.bits;
        }
      }
    }
    return best;
  }
}

/** Builds a {@link ValidationFailure} that throws a `DbtapError` with `code`. */
export function failWith(code: `DBTAP_E_${string}`, prefix = '', details: Record<string, unknown> = {}): ValidationFailure {
  return (path: string, message: string): never => {
    throw new DbtapError(code, `${prefix}${path}: ${message}`, { ...details, path });
  };
}
