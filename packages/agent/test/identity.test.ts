// Per-agent identity: one agent (or a holder of the shared token) must not be
// able to silence another by claiming its instance id with a huge sequence
// number, after which the victim's batches were acknowledged and discarded.
import test from 'ava';
import { connect } from 'node:net';
import {
  AgentErrorCodes,
  AgentIdentities,
  DEFAULT_MAX_SEQ_JUMP,
  MessageReader,
  TransportClient,
  TransportServer,
  decodeMessage,
  encodeBatchHead,
  encodeMessage,
  type AgentCredential,
  type TransportServerOptions,
} from '@dbtap/agent';
import { frameId, numberedFrame } from './helpers.js';

const VICTIM_TOKEN = 'victim-token-0123456789';
const ATTACKER_TOKEN = 'attacker-token-0123456789';
const SHARED = 'shared-token-0123456789';
const credentials: AgentCredential[] = [
  { name: 'db1', token: VICTIM_TOKEN, agentIds: ['db1'] },
  { name: 'db2', token: ATTACKER_TOKEN, agentIds: ['db2'] },
];

/** The forged hello and an empty batch with a huge sequence number; resolves with the codes of what the server answered. */
async function forge(port: number, token: string, agent: { id: string; instance: string }, seq: number): Promise<string[]> {
  const socket = connect({ host: '127.0.0.1', port });
  const answers: string[] = [];
  const reader = new MessageReader(1 << 20);
  socket.on('data', (chunk: Buffer) => {
    reader.push(chunk, (body) => {
      const m = decodeMessage(body);
      if ('t' in m) answers.push(m.t === 'error' ? m.code : m.t === 'ack' ? `ack ${m.seq}` : m.t);
    });
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.write(encodeMessage({ t: 'hello', v: 1, token, agent: { id: agent.id, hostname: 'evil', instance: agent.instance, version: 'x' } }));
  socket.write(encodeBatchHead(seq, 0, 0));
  // the server closes the connection on a refusal; an accepted forgery is acknowledged, then we hang up
  await new Promise<void>((resolve) => {
    const done = (): void => {
      socket.destroy();
      resolve();
    };
    socket.on('close', resolve);
    const poll = setInterval(() => {
      if (answers.some((a) => a.startsWith('ack') || a.startsWith('DBTAP_E'))) {
        clearInterval(poll);
        done();
      }
    }, 10);
  });
  return answers;
}

/** A receiver, a victim agent that delivers frames 1..3, the forgery, then frames 4..6: which frames reached the consumer. */
async function attack(opts: Omit<TransportServerOptions, 'onBatch'>, victimToken: string, forgery: { token: string; id?: string; seq: number }): Promise<{ delivered: number[]; answers: string[]; server: TransportServer }> {
  const delivered: number[] = [];
  const server = new TransportServer({ ...opts, onBatch: (_a, frames) => void frames.forEach((f) => delivered.push(frameId(f))) });
  const [addr] = await server.listen({ host: '127.0.0.1', port: 0 });
  const victim = new TransportClient({ host: '127.0.0.1', port: addr!.port, token: victimToken, agentId: 'db1', batchMaxPackets: 1, reconnectMinMs: 20, reconnectMaxMs: 50 }).start();
  for (let i = 1; i <= 3; i++) victim.send(numberedFrame(i));
  if (!(await victim.drain(10_000))) throw new Error('victim not acknowledged');
  const answers = await forge(addr!.port, forgery.token, { id: forgery.id ?? 'db1', instance: victim.agent.instance }, forgery.seq);
  for (let i = 4; i <= 6; i++) victim.send(numberedFrame(i));
  if (!(await victim.drain(10_000))) throw new Error('victim not acknowledged after the forgery');
  await victim.stop();
  await server.close();
  return { delivered, answers, server };
}

test('with the shared token, a forged hello with a sequence number 4,000,000,000 is refused with DBTAP_E_SEQ_JUMP and the victim keeps being audited', async (t) => {
  const { delivered, answers, server } = await attack({ token: SHARED }, SHARED, { token: SHARED, seq: 4_000_000_000 });
  t.deepEqual(answers, ['hello', AgentErrorCodes.SEQ_JUMP]);
  t.deepEqual(delivered, [1, 2, 3, 4, 5, 6], 'no batch of the victim is discarded');
  t.is(server.stats().seqJumps, 1);
  t.true(server.stats().refused >= 1);
});

test('an agent presenting its own credential may not claim another agent id: DBTAP_E_AGENT_IDENTITY, counted', async (t) => {
  const { delivered, answers, server } = await attack({ agents: credentials }, VICTIM_TOKEN, { token: ATTACKER_TOKEN, seq: 500 });
  t.deepEqual(answers, [AgentErrorCodes.AGENT_IDENTITY]);
  t.deepEqual(delivered, [1, 2, 3, 4, 5, 6]);
  t.is(server.stats().identityRefused, 1);
});

test('an agent announcing its own id with another agent\'s instance moves only its own position', async (t) => {
  // within the jump bound, so it is accepted: but positions belong to (agent id, instance)
  const { delivered, answers } = await attack({ agents: credentials }, VICTIM_TOKEN, { token: ATTACKER_TOKEN, id: 'db2', seq: 500 });
  t.deepEqual(answers, ['hello', 'ack 500']);
  t.deepEqual(delivered, [1, 2, 3, 4, 5, 6]);
});

test('the shared token keeps working beside credentials, but not for an id a credential owns', async (t) => {
  const { delivered, answers, server } = await attack({ token: SHARED, agents: credentials }, VICTIM_TOKEN, { token: SHARED, seq: 7 });
  t.deepEqual(answers, [AgentErrorCodes.AGENT_IDENTITY]);
  t.deepEqual(delivered, [1, 2, 3, 4, 5, 6]);
  t.is(server.stats().identityRefused, 1);
  const ids = new AgentIdentities(SHARED, credentials);
  t.like(ids.check(SHARED, undefined, 'db9'), { ok: true, credential: undefined });
  t.like(ids.check(VICTIM_TOKEN, undefined, 'db1'), { ok: true, credential: 'db1' });
  t.like(ids.check('nope', undefined, 'db9'), { ok: false });
  t.is((ids.check('nope', undefined, 'db9') as { error: { code: string } }).error.code, AgentErrorCodes.AUTH);
  // a verified certificate subject identifies an agent as its token does
  const byCert = new AgentIdentities(undefined, [{ name: 'db3', certificateSubject: 'agent-db3', agentIds: ['db3'] }]);
  t.like(byCert.check(undefined, 'agent-db3', 'db3'), { ok: true, credential: 'db3' });
  t.is((byCert.check(undefined, 'agent-db3', 'db1') as { error: { code: string } }).error.code, AgentErrorCodes.AGENT_IDENTITY);
  t.is((byCert.check(undefined, undefined, 'db3') as { error: { code: string } }).error.code, AgentErrorCodes.AUTH);
});

test('credentials are validated: a secret and ids are required, an id is bound once, tokens are never echoed', (t) => {
  const bad: Array<[unknown, RegExp]> = [
    [[{ name: 'a', agentIds: ['x'] }], /needs token, tokenSha256 or certificateSubject/],
    [[{ name: 'a', token: 'short', agentIds: ['x'] }], /at least 16 characters/],
    [[{ name: 'a', token: VICTIM_TOKEN, agentIds: [] }], /agentIds must be a non-empty list/],
    [[{ name: 'a', tokenSha256: 'abc', agentIds: ['x'] }], /64 hex digits/],
    [[{ name: 'a', token: VICTIM_TOKEN, agentIds: ['x'] }, { name: 'b', token: ATTACKER_TOKEN, agentIds: ['x'] }], /already bound to a/],
  ];
  for (const [list, want] of bad) {
    const err = t.throws(() => new AgentIdentities(undefined, list as AgentCredential[]));
    t.regex(err!.message, want);
    t.false(err!.message.includes(VICTIM_TOKEN) || err!.message.includes(ATTACKER_TOKEN), 'no token in the message');
    t.is((err as { code?: string }).code, 'DBTAP_E_INVALID_ARGUMENT');
  }
  t.throws(() => new TransportServer({ onBatch: () => {}, maxSeqJump: 0 }), { message: /maxSeqJump/ });
  t.is(DEFAULT_MAX_SEQ_JUMP, 1_000_000);
});
