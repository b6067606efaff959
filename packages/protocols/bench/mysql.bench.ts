// MySQL decoder throughput on real traffic, beside tshark on the same file,
// for two captures: the MySQL connections of the shared benchmark capture
// (mariadb-slap's mixed load against the local MariaDB, dominated by large
// result sets; see test-support/bench-capture.ts), and a statement-heavy
// capture recorded here once (mysql2: 40,000 short text and prepared
// statements over four connections). Prints one JSON line per case and file:
//   session      - the decoder alone: sessions fed the reassembled streams held in memory
//   framer-only  - baseline: cutting the same bytes into packets, no decoding, no records
//   pipeline     - the whole audit path: read the file, decode frames, reassemble, detect, decode
//   tshark       - `tshark -r F -Y mysql.query -T fields -e mysql.query` on the same file
//                  (tshark prints COM_QUERY and COM_STMT_PREPARE text; executes carry none)
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join, dirname } from 'node:path';
import mysql2 from 'mysql2/promise';
import { mysql } from '@dbtap/protocols';
import { benchCapture } from '../../../test-support/bench-capture.js';
import { PacketFramer } from '../src/mysql/framer.js';
import { best, bestAudit, bestTshark, loadStreams, mbPerSec as mb, runSessions, type Stream } from '../../../test-support/bench-streams.js';

/** Writes the MySQL connections of `source` to `file` (tshark dissects every frame it reads: both sides get MySQL traffic only). */
function mysqlOnly(source: string, file: string): string {
  if (!existsSync(file) || statSync(file).mtimeMs < statSync(source).mtimeMs) {
    const r = spawnSync('tshark', ['-r', source, '-Y', 'tcp.port == 3306', '-F', 'pcap', '-w', file], { stdio: ['ignore', 'ignore', 'pipe'] });
    if (r.status !== 0) throw new Error(`tshark could not write ${file}: ${r.stderr?.toString()}`);
  }
  return file;
}

/** Records 40,000 short statements from mysql2 (text and prepared) once, with dumpcap; needs root and the local MariaDB. */
async function statementCapture(dir: string): Promise<string> {
  const file = join(dir, 'mysql-statements.pcap');
  if (existsSync(file) && statSync(file).size > 1_000_000) return file;
  const db = 'dbtap_bench_statements';
  const admin = await mysql2.createConnection({ host: '127.0.0.1', user: 'root' });
  await admin.query(`DROP DATABASE IF EXISTS ${db}`);
  await admin.query(`CREATE DATABASE ${db}`);
  await admin.query(`CREATE TABLE ${db}.acct (id INT PRIMARY KEY, owner VARCHAR(64), balance DECIMAL(12,2), updated DATETIME, INDEX (owner))`);
  const cap = spawn('dumpcap', ['-q', '-i', 'lo', '-f', 'tcp port 3306', '-s', '262144', '-B', '64', '-P', '-w', file], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 1500));
  const pool = mysql2.createPool({ host: '127.0.0.1', user: 'root', database: db, connectionLimit: 4 });
  let next = 0;
  const total = 40_000;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < total) {
        const i = next++;
        switch (i % 5) {
          case 0:
            await pool.query('INSERT INTO acct (id, owner, balance, updated) VALUES (?, ?, ?, NOW())', [i, `owner-${i % 500}`, i / 7]);
            break;
          case 1:
            await pool.execute('SELECT id, owner, balance FROM acct WHERE owner = ? LIMIT 10', [`owner-${i % 500}`]);
            break;
          case 2:
            await pool.execute('UPDATE acct SET balance = balance + ?, updated = ? WHERE id = ?', [1.5, new Date(), i - 2]);
            break;
          case 3:
            await pool.query(`SELECT COUNT(*), SUM(balance) FROM acct WHERE id BETWEEN ${i - 100} AND ${i}`);
            break;
          default:
            await pool.query(`DELETE FROM acct WHERE id = ${i - 4}`);
        }
      }
    }),
  );
  await pool.end();
  await new Promise((r) => setTimeout(r, 1000));
  const done = new Promise((r) => cap.once('exit', r));
  cap.kill('SIGTERM');
  await done;
  await admin.query(`DROP DATABASE IF EXISTS ${db}`);
  await admin.end();
  return file;
}

function runFramers(streams: Stream[]): number {
  let packets = 0;
  const sink = (): void => {
    packets++;
  };
  for (const s of streams) {
    const f = [new PacketFramer(sink, 64 << 20), new PacketFramer(sink, 64 << 20)];
    for (const [d, b] of s.chunks) {
      if (typeof b === 'number') f[d]!.gap(b);
      else f[d]!.push(b);
    }
  }
  return packets;
}


async function benchFile(name: string, file: string): Promise<void> {
  const line = (c: string, fields: Record<string, unknown>): void => console.log(JSON.stringify({ bench: 'mysql', capture: name, case: c, ...fields }));
  const fileBytes = statSync(file).size;
  const { streams, payload } = loadStreams(file, 3306);
  for (let i = 0; i < 2; i++) {
    runFramers(streams);
    runSessions(mysql, streams, 0);
    runSessions(mysql, streams, 5);
  }
  const framer = best(() => runFramers(streams));
  line('framer-only', { streams: streams.length, payloadMb: +(payload / 1e6).toFixed(1), seconds: +framer.seconds.toFixed(3), mbPerSec: mb(payload, framer.seconds), packetsPerSec: Math.round(framer.result / framer.seconds) });
  for (const maxRows of [0, 5]) {
    const r = best(() => runSessions(mysql, streams, maxRows));
    line(maxRows === 0 ? 'session' : 'session-maxRows-5', {
      statements: r.result.statements,
      seconds: +r.seconds.toFixed(3),
      mbPerSec: mb(payload, r.seconds),
      statementsPerSec: Math.round(r.result.statements / r.seconds),
      recordsPerSec: Math.round(r.result.records / r.seconds),
      vsFramer: +(framer.seconds / r.seconds).toFixed(2),
    });
  }

  // The whole path and tshark: best of three runs each.
  const { seconds: pipelineSeconds, statements, frames } = await bestAudit(file, [3306]);
  line('pipeline', { file, fileMb: +(fileBytes / 1e6).toFixed(1), frames, statements, seconds: +pipelineSeconds.toFixed(3), mbPerSec: mb(fileBytes, pipelineSeconds), statementsPerSec: Math.round(statements / pipelineSeconds) });

  const shark = bestTshark(['-r', file, '-Y', 'mysql.query', '-T', 'fields', '-e', 'mysql.query']);
  if (shark === undefined) return;
  const { seconds: tsharkSeconds, lines: queries } = shark;
  line('tshark', { queries, seconds: +tsharkSeconds.toFixed(3), mbPerSec: mb(fileBytes, tsharkSeconds), queriesPerSec: Math.round(queries / tsharkSeconds) });
  line('ratio', { pipelineVsTshark: +(tsharkSeconds / pipelineSeconds).toFixed(1) });
}

const source = process.env.DBTAP_BENCH_CAPTURE ?? (await benchCapture());
const dir = dirname(source);
await benchFile('slap-mixed', mysqlOnly(source, join(dir, 'mysql-traffic.pcap')));
await benchFile('statements', await statementCapture(dir));
