// DRDA test helpers: recorded Derby conversations (pcaps under
// test/fixtures/, recorded with drda-record-fixtures.ts) as the TCP chunks
// the conformance suite replays, and a direct session runner.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodePacket, Direction, readCaptureBytes, type AuditEvent } from '@dbtap/core';
import { defaultSessionOptions, drda, type SessionOptions } from '@dbtap/protocols';

/** The fixtures directory. */
export const fixturesDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');

/** The TCP payloads of a one-connection capture, in capture order, with their direction (the server is the SYN's target). */
export function chunksOf(file: string): [Direction, Uint8Array][] {
  const out: [Direction, Uint8Array][] = [];
  const reader = readCaptureBytes(readFileSync(file));
  let serverPort = -1;
  for (let f = reader.next(); f !== undefined; f = reader.next()) {
    const p = decodePacket(f);
    if (p.tcp === undefined) continue;
    if (serverPort < 0) serverPort = p.tcp.dstPort;
    if (p.payload.length === 0) continue;
    out.push([p.tcp.dstPort === serverPort ? Direction.ToServer : Direction.ToClient, p.payload.slice()]);
  }
  return out;
}

/** Feeds chunks into one DRDA session and returns its records. */
export function runChunks(chunks: ReadonlyArray<readonly [Direction, Uint8Array]>, options: Partial<SessionOptions> = {}, midStream = false): AuditEvent[] {
  const events: AuditEvent[] = [];
  const s = drda.createSession({
    flowId: 'f',
    client: { ip: '127.0.0.1', port: 40000 },
    server: { ip: '127.0.0.1', port: 1527 },
    midStream,
    options: { ...defaultSessionOptions, ...options },
    emit: (e) => events.push(e),
  });
  let ts = 1;
  for (const [dir, b] of chunks) s.data(dir, b, ts++);
  s.close('fin', ts);
  return events;
}
