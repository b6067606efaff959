// Captures of real TDS clients on `lo`: dumpcap records while tedious (and,
// for tests, FreeTDS tsql) talk to the test responder on its ephemeral port,
// so the file holds what those clients send on a port no decoder claims.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { Connection, Request, TYPES } from 'tedious';
import { startTdsResponder } from './tds-responder.js';

/** True when a live capture can be recorded here (root and dumpcap). */
export function canRecordTds(): boolean {
  return process.getuid?.() === 0 && existsSync('/usr/bin/dumpcap');
}

/** What to run while capturing. */
export interface TdsWorkload {
  /** tedious statements (a mix of batches, sp_executesql with parameters, prepared executes), over `connections` connections. */
  readonly statements: number;
  readonly connections?: number;
  /** Also run FreeTDS tsql with TDSVER=5.0 (Sybase) once. */
  readonly freetds5?: boolean;
  readonly password: string;
}

/** Records `work` into `file` (pcap); returns the responder's port. */
export async function recordTds(file: string, work: TdsWorkload): Promise<number> {
  const r = await startTdsResponder({ password: work.password });
  const cap = spawn('dumpcap', ['-q', '-i', 'lo', '-f', `tcp port ${r.port}`, '-s', '262144', '-B', '64', '-P', '-w', file], { stdio: 'ignore' });
  await new Promise((res) => setTimeout(res, 1500));
  try {
    const per = Math.ceil(work.statements / (work.connections ?? 1));
    await Promise.all(Array.from({ length: work.connections ?? 1 }, (_, k) => tediousWork(r.port, work.password, per, k)));
    if (work.freetds5 === true) {
      await new Promise<void>((res) => {
        const p = spawn('tsql', ['-H', '127.0.0.1', '-p', String(r.port), '-U', 'sybuser', '-P', work.password, '-D', 'sales'], { env: { ...process.env, TDSVER: '5.0', FREETDSCONF: '/nonexistent' }, stdio: ['pipe', 'ignore', 'ignore'] });
        p.on('exit', () => res());
        p.stdin.end('select id, name from customers\ngo\nupdate t set n = 1\ngo\nexit\n');
      });
    }
    await new Promise((res) => setTimeout(res, 1000));
  } finally {
    const done = new Promise((res) => cap.once('exit', res));
    cap.kill('SIGTERM');
    await done;
    await r.close();
  }
  if (!existsSync(file)) throw new Error(`dumpcap wrote no ${file}: ${spawnSync('dumpcap', ['-D']).stderr?.toString()}`);
  return r.port;
}

async function tediousWork(port: number, password: string, n: number, k: number): Promise<void> {
  const c = await new Promise<Connection>((resolve, reject) => {
    const conn = new Connection({ server: '127.0.0.1', authentication: { type: 'default', options: { userName: `app${k}`, password } }, options: { port, encrypt: false, database: 'sales', appName: 'dbtap-traffic' } });
    conn.on('connect', (e) => (e ? reject(e) : resolve(conn)));
    conn.connect();
  });
  const exec = (q: Request): Promise<void> =>
    new Promise((res) => {
      q.on('requestCompleted', () => res());
      c.execSql(q);
    });
  const prep = new Request('update acct set balance = balance + @d where id = @id', () => {});
  prep.addParameter('d', TYPES.Decimal, 0, { precision: 12, scale: 2 });
  prep.addParameter('id', TYPES.Int, 0);
  await new Promise<void>((res) => {
    prep.once('prepared', () => res());
    c.prepare(prep);
  });
  for (let i = 0; i < n; i++) {
    switch (i % 4) {
      case 0: {
        const q = new Request('select id, name from customers where id = @id', () => {});
        q.addParameter('id', TYPES.Int, i);
        await exec(q);
        break;
      }
      case 1:
        await new Promise<void>((res) => {
          prep.once('requestCompleted', () => res());
          c.execute(prep, { d: i / 4, id: i });
        });
        break;
      case 2:
        await new Promise<void>((res) => c.execSqlBatch(new Request(`delete from audit_log where id = ${i}`, () => res())));
        break;
      default: {
        const q = new Request('insert into acct (id, owner, note) values (@id, @owner, @note)', () => {});
        q.addParameter('id', TYPES.Int, i);
        q.addParameter('owner', TYPES.NVarChar, `owner-${i % 100}`);
        q.addParameter('note', TYPES.VarChar, 'x'.repeat(i % 50));
        await exec(q);
      }
    }
  }
  await new Promise<void>((res) => {
    c.on('end', () => res());
    c.close();
  });
}
