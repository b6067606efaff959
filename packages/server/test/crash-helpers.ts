// A dbtap-server process to kill and restart (store-records.ts reads its store).
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { Frame } from '@dbtap/core';
import { TransportClient } from '@dbtap/agent';
import { repoRoot } from '../../../test-support/corpus.js';

/** Starts `dbtap serve --config <config>` and resolves once its agent listener is up. */
export function startServer(config: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import=tsx', join(repoRoot, 'packages/server/src/cli.ts'), 'serve', '--config', config], { cwd: repoRoot, stdio: ['ignore', 'ignore', 'pipe'] });
  return new Promise((resolve, reject) => {
    let err = '';
    const timer = setTimeout(() => reject(new Error(`server did not start: ${err}`)), 30_000);
    child.stderr!.on('data', (b: Buffer) => {
      err += b.toString();
      if (err.includes('agents on')) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.once('exit', (code) => reject(new Error(`server exited with ${code}: ${err}`)));
  });
}



/**
 * An agent streaming `frames` to the server on `port`, at a pace the server
 * keeps up with, and the SIGKILL of `server` once `fraction` of them are
 * acknowledged (so the kill lands mid-stream). Resolves after the kill with
 * the client, the frames acknowledged at the kill, and the feeding (which
 * goes on into the next server).
 */
export async function streamAndKill(frames: readonly Frame[], port: number, server: ChildProcess, fraction: number): Promise<{ client: TransportClient; ackedAtKill: number; feeder: Promise<void> }> {
  const client = new TransportClient({ host: '127.0.0.1', port, agentId: 'db1', batchMaxPackets: 40, reconnectMinMs: 100, reconnectMaxMs: 400, queueMaxPackets: frames.length * 2 }).start();
  let sent = 0;
  const feeder = (async () => {
    while (sent < frames.length) {
      for (let i = 0; i < 200 && sent < frames.length; i++) client.send(frames[sent++]!);
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  while (client.stats().ackedPackets < frames.length * fraction) await new Promise((r) => setTimeout(r, 10));
  const ackedAtKill = client.stats().ackedPackets;
  server.kill('SIGKILL');
  await new Promise((r) => server.once('exit', r));
  return { client, ackedAtKill, feeder };
}
