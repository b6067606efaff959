import test from 'ava';
import type { Frame } from '@dbtap/core';
import { AgentErrorCodes, TransportClient, TransportServer, type AgentInfo } from '@dbtap/agent';
import { numberedFrame, waitFor } from './helpers.js';
import { makeTestPki } from '../../../test-support/tls-recorder.js';

// A throw-away PKI: one CA, a server certificate for 127.0.0.1, a client certificate,
// and an unrelated CA that signed nothing the server uses.
const pki = makeTestPki();
const pem = (n: string) => pki.pem(n);
test.after.always(() => pki.remove());

async function tlsServer(requestCert: boolean) {
  const frames: Frame[] = [];
  const agents: AgentInfo[] = [];
  const refusals: string[] = [];
  const server = new TransportServer({
    token: 'tok',
    tls: { key: pem('server.key'), cert: pem('server.crt'), ca: pem('ca.crt'), requestCert, rejectUnauthorized: requestCert },
    onBatch: (_a, f) => void frames.push(...f),
  });
  server.on('connect', (a) => agents.push(a));
  server.on('clientError', (e) => refusals.push(e.code));
  const [addr] = await server.listen({ host: '127.0.0.1', port: 0 });
  return { server, port: addr!.port, frames, agents, refusals };
}

const fast = { reconnectMinMs: 20, reconnectMaxMs: 100, batchMaxDelayMs: 5 };

test('TLS with server verification delivers frames', async (t) => {
  const s = await tlsServer(false);
  const client = new TransportClient({ host: '127.0.0.1', port: s.port, token: 'tok', tls: { ca: pem('ca.crt') }, ...fast }).start();
  for (let i = 0; i < 50; i++) client.send(numberedFrame(i));
  t.true(await client.drain(10_000));
  t.is(s.frames.length, 50);
  t.true(s.agents[0]!.tls);
  await client.stop();
  await s.server.close();
});

test('TLS: a server certificate from an unknown CA is rejected by the agent', async (t) => {
  const s = await tlsServer(false);
  const client = new TransportClient({ host: '127.0.0.1', port: s.port, token: 'tok', tls: { ca: pem('other.crt') }, ...fast });
  const errs: string[] = [];
  client.on('disconnect', (e) => errs.push(`${e.code} ${e.message}`));
  client.start();
  client.send(numberedFrame(1));
  await waitFor(() => errs.length > 0, 'TLS failure');
  t.regex(errs[0]!, /^DBTAP_E_CONNECT connect 127\.0\.0\.1:\d+ failed: (UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY|SELF_SIGNED_CERT_IN_CHAIN)/);
  t.is(s.frames.length, 0);
  await client.stop(0);
  await s.server.close();
});

test('TLS client certificates: required, verified and reported', async (t) => {
  const s = await tlsServer(true);
  const anonymous = new TransportClient({ host: '127.0.0.1', port: s.port, token: 'tok', tls: { ca: pem('ca.crt') }, ...fast });
  const errs: string[] = [];
  anonymous.on('disconnect', (e) => errs.push(e.code));
  anonymous.start();
  anonymous.send(numberedFrame(1));
  await waitFor(() => errs.length > 0 && s.refusals.length > 0, 'refusal of an agent without a certificate');
  t.is(s.refusals[0], AgentErrorCodes.AUTH);
  await anonymous.stop(0);
  t.is(s.frames.length, 0);

  const client = new TransportClient({
    host: '127.0.0.1',
    port: s.port,
    token: 'tok',
    tls: { ca: pem('ca.crt'), cert: pem('client.crt'), key: pem('client.key') },
    ...fast,
  }).start();
  client.send(numberedFrame(2));
  t.true(await client.drain(10_000));
  t.is(s.agents[0]!.certificateSubject, 'agent-db1');
  await client.stop();
  await s.server.close();
});
