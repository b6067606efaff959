// Who an agent is: per-agent credentials (a token, or a verified client
// certificate subject) bound to the agent ids each may announce. Without
// them, holders of a shared token could speak for any agent and, by claiming
// another agent's instance with a huge sequence number, make the server
// discard that agent's later batches as duplicates.
import { createHash, timingSafeEqual } from 'node:crypto';
import { DbtapError, ErrorCodes } from '@dbtap/core';
import { AgentErrorCodes } from '../errors.js';

/**
 * One agent's credential: how it proves who it is, and the agent ids it may
 * announce in its hello. Give `token`, `tokenSha256` or `certificateSubject`
 * (or several: any one of them identifies the agent).
 */
export interface AgentCredential {
  /** A name for logs and counters (never the secret). */
  readonly name: string;
  /** The agent's own token. */
  readonly token?: string;
  /** SHA-256 of the agent's token, 64 hex digits (keeps the token itself out of the configuration). */
  readonly tokenSha256?: string;
  /** Subject CN of the agent's client certificate, verified by the TLS listener against its CA. */
  readonly certificateSubject?: string;
  /** The agent ids this credential may announce (exact match); each id belongs to one credential. */
  readonly agentIds: readonly string[];
}

/** Default of {@link TransportServerOptions.maxSeqJump}: one million batches. */
export const DEFAULT_MAX_SEQ_JUMP = 1_000_000;

/** What the hello of a connection proved. */
export type IdentityVerdict =
  | { readonly ok: true; readonly credential: string | undefined }
  | { readonly ok: false; readonly error: DbtapError };

function sha256(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

function invalid(msg: string): DbtapError {
  return new DbtapError(ErrorCodes.INVALID_ARGUMENT, msg);
}

interface Bound {
  readonly name: string;
  readonly tokenHash: Buffer | undefined;
  readonly subject: string | undefined;
  readonly agentIds: ReadonlySet<string>;
}

/**
 * Checks hellos against the shared token(s) and the per-agent credentials.
 *
 * - A hello whose token (or verified certificate subject) is an agent's
 *   credential is accepted only for an agent id bound to that credential;
 *   any other id is refused with `DBTAP_E_AGENT_IDENTITY`.
 * - A hello with a shared token is accepted for any agent id that no
 *   credential owns (single-agent setups keep working); an owned id is
 *   refused with `DBTAP_E_AGENT_IDENTITY`.
 * - Anything else is `DBTAP_E_AUTH`. With neither tokens nor credentials,
 *   every hello is accepted.
 */
export class AgentIdentities {
  private readonly shared: Buffer[] | undefined;
  private readonly bound: Bound[];
  private readonly owner = new Map<string, Bound>();

  /**
   * @param token shared token(s), or `undefined`
   * @param credentials per-agent credentials
   * @throws `DBTAP_E_INVALID_ARGUMENT` on an empty token, a credential without a secret or ids, or an id bound twice
   */
  constructor(token: string | readonly string[] | undefined, credentials: readonly AgentCredential[] = []) {
    const tokens = token === undefined ? undefined : typeof token === 'string' ? [token] : [...token];
    if (tokens !== undefined && (tokens.length === 0 || tokens.some((t) => typeof t !== 'string' || t.length === 0))) {
      throw invalid('token must be a non-empty string or list of them');
    }
    this.shared = tokens?.map(sha256);
    if (!Array.isArray(credentials)) throw invalid('agents must be a list of credentials');
    this.bound = credentials.map((c, i) => this.bind(c, i));
  }

  private bind(c: AgentCredential, i: number): Bound {
    const where = `agents[${i}]`;
    if (c === null || typeof c !== 'object') throw invalid(`${where}: expected a credential`);
    if (typeof c.name !== 'string' || c.name === '') throw invalid(`${where}: name missing`);
    if (c.token !== undefined && (typeof c.token !== 'string' || c.token.length < 16)) throw invalid(`${where} (${c.name}): token must be at least 16 characters`);
    if (c.tokenSha256 !== undefined && (typeof c.tokenSha256 !== 'string' || !/^[0-9a-f]{64}$/i.test(c.tokenSha256))) throw invalid(`${where} (${c.name}): tokenSha256 must be 64 hex digits`);
    if (c.token !== undefined && c.tokenSha256 !== undefined) throw invalid(`${where} (${c.name}): give token or tokenSha256, not both`);
    if (c.certificateSubject !== undefined && (typeof c.certificateSubject !== 'string' || c.certificateSubject === '')) throw invalid(`${where} (${c.name}): certificateSubject must be a non-empty string`);
    if (c.token === undefined && c.tokenSha256 === undefined && c.certificateSubject === undefined) throw invalid(`${where} (${c.name}): needs token, tokenSha256 or certificateSubject`);
    if (!Array.isArray(c.agentIds) || c.agentIds.length === 0 || c.agentIds.some((id) => typeof id !== 'string' || id === '')) throw invalid(`${where} (${c.name}): agentIds must be a non-empty list of agent ids`);
    const tokenHash = c.token !== undefined ? sha256(c.token) : c.tokenSha256 !== undefined ? Buffer.from(c.tokenSha256, 'hex') : undefined;
    const b: Bound = { name: c.name, tokenHash, subject: c.certificateSubject, agentIds: new Set(c.agentIds) };
    for (const id of c.agentIds) {
      const other = this.owner.get(id);
      if (other !== undefined) throw invalid(`${where} (${c.name}): agent id ${JSON.stringify(id)} is already bound to ${other.name}`);
      this.owner.set(id, b);
    }
    return b;
  }

  /** True when hellos must present something (a shared token or a credential). */
  get required(): boolean {
    return this.shared !== undefined || this.bound.length > 0;
  }

  /**
   * Decides a hello.
   * @param token the token the hello presented
   * @param subject the subject CN of a client certificate the TLS layer verified, if any
   * @param agentId the agent id the hello announces
   */
  check(token: string | undefined, subject: string | undefined, agentId: string): IdentityVerdict {
    if (!this.required) return { ok: true, credential: undefined };
    const h = typeof token === 'string' ? sha256(token) : undefined;
    let cred: Bound | undefined;
    // Every digest is compared (in constant time), so timing does not say which one matched.
    for (const b of this.bound) {
      const byToken = h !== undefined && b.tokenHash !== undefined && timingSafeEqual(h, b.tokenHash);
      if ((byToken || (subject !== undefined && b.subject === subject)) && cred === undefined) cred = b;
    }
    if (cred !== undefined) {
      if (cred.agentIds.has(agentId)) return { ok: true, credential: cred.name };
      return { ok: false, error: new DbtapError(AgentErrorCodes.AGENT_IDENTITY, `credential ${cred.name} is not bound to agent id ${JSON.stringify(agentId)}`) };
    }
    let shared = false;
    if (h !== undefined && this.shared !== undefined) for (const s of this.shared) if (timingSafeEqual(h, s)) shared = true;
    if (!shared) return { ok: false, error: new DbtapError(AgentErrorCodes.AUTH, token === undefined ? 'no token presented' : 'wrong token') };
    const owner = this.owner.get(agentId);
    if (owner !== undefined) return { ok: false, error: new DbtapError(AgentErrorCodes.AGENT_IDENTITY, `agent id ${JSON.stringify(agentId)} is bound to credential ${owner.name}: the shared token may not announce it`) };
    return { ok: true, credential: undefined };
  }
}
