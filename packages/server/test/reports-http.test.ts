// Reports through `GET /api/reports/{kind}` and `dbtap report`.
import test from 'ava';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SqliteStore } from '../src/store/index.js';
import { createApiServer, openApiDocument } from '../src/http/index.js';
import { buildReport, reportToCsv, type ComplianceReport, type Report, type StatementsReport } from '../src/reports/index.js';
import { repoRoot } from '../../../test-support/corpus.js';
import { tempDir } from './store-helpers.js';
import { HOUR, R0, reportLog } from './reports-helpers.js';
import { request, type HttpResult } from './http-helpers.js';

const log = reportLog(50, 3);
const tmp = tempDir('dbtap-reports-http-');
const dataDir = join(tmp.dir, 'data');
let store: SqliteStore;
let server: Server;
let base: string;
const defaults = { sensitiveTables: ['salaries'], workingHours: { timeZone: 'Europe/Berlin', start: '09:00', end: '17:00' }, minRisk: 'high' as const };

test.before(async () => {
  const { mkdirSync } = await import('node:fs');
  mkdirSync(dataDir);
  store = new SqliteStore(join(dataDir, 'audit.db'));
  await store.append(log);
  server = createApiServer({ store, reports: defaults });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

test.after.always(async () => {
  await new Promise((resolve) => server?.close(resolve));
  await store?.close();
  tmp.cleanup();
});

const get = (path: string): Promise<HttpResult> => request(base + path);

const withoutClock = (r: Report): object => {
  const { generatedAt: _, ...rest } = r;
  return rest;
};

test('every kind as JSON equals the report built directly, with the server defaults', async (t) => {
  const from = new Date((R0 + 12 * HOUR) / 1000).toISOString();
  for (const kind of ['server', 'source', 'compliance', 'statements'] as const) {
    const r = await get(`/api/reports/${kind}?from=${encodeURIComponent(from)}&to=${R0 + 80 * HOUR}&top=7`);
    t.is(r.status, 200, r.text);
    t.regex(r.headers.get('content-type')!, /^application\/json/);
    const direct = withoutClock(await buildReport(store, kind, { ...defaults, from, to: R0 + 80 * HOUR, top: 7 }));
    t.deepEqual(withoutClock(r.body as Report), JSON.parse(JSON.stringify(direct)) as object, kind);
    t.is(r.body.kind, kind);
    t.is(r.body.from, R0 + 12 * HOUR);
  }
  const c = (await get('/api/reports/compliance')).body as ComplianceReport;
  t.deepEqual(c.settings, { minRisk: 'high', sensitiveTables: ['salaries'], workingHours: { timeZone: 'Europe/Berlin', start: '09:00', end: '17:00', days: [1, 2, 3, 4, 5] } });
  t.true(c.sections.find((s) => s.id === 'sensitiveAccess')!.count > 0);
  // Query parameters override the defaults.
  const o = (await get('/api/reports/compliance?sensitive=shop.orders&minRisk=medium&timeZone=UTC&workHours=00:00-12:00&workDays=sat-sun')).body as ComplianceReport;
  t.deepEqual(o.settings, { minRisk: 'medium', sensitiveTables: ['shop.orders'], workingHours: { timeZone: 'UTC', start: '00:00', end: '12:00', days: [0, 6] } });
  t.deepEqual(withoutClock(o), withoutClock(await buildReport(store, 'compliance', { sensitiveTables: ['shop.orders'], minRisk: 'medium', workingHours: { timeZone: 'UTC', start: '00:00', end: '12:00', days: [0, 6] } })));
  // `object` and `auditObjectId` both select the audit object.
  const a = (await get('/api/reports/server?object=db-b')).body;
  const b = (await get('/api/reports/server?auditObjectId=db-b')).body;
  t.deepEqual(a.objects.map((x: { auditObjectId: string }) => x.auditObjectId), ['db-b']);
  t.deepEqual(withoutClock(a), withoutClock(b));
});

test('CSV and HTML downloads', async (t) => {
  const csv = await get('/api/reports/statements?format=csv');
  t.is(csv.status, 200);
  t.regex(csv.headers.get('content-type')!, /^text\/csv; charset=utf-8/);
  t.regex(csv.headers.get('content-disposition')!, /^attachment; filename="dbtap-statements-report-\d{8}T\d{6}\.csv"$/);
  t.is(csv.text, reportToCsv(await buildReport(store, 'statements', defaults)));
  const html = await get('/api/reports/server?format=html&bucket=1h');
  t.is(html.status, 200);
  t.regex(html.headers.get('content-type')!, /^text\/html; charset=utf-8/);
  t.is(html.headers.get('content-security-policy'), "default-src 'none'; style-src 'unsafe-inline'");
  t.is(html.headers.get('x-content-type-options'), 'nosniff');
  t.true(html.text.startsWith('<!doctype html>'));
  t.true(html.text.includes('Volume buckets of 1 h.'));
  t.is(Number(html.headers.get('content-length')), Buffer.byteLength(html.text));
});

test('bad requests are 400 naming the parameter, unknown kinds 404', async (t) => {
  const cases: [string, string][] = [
    ['/api/reports/server?bucket=fortnight', 'bucket'],
    ['/api/reports/server?bucket=1s', 'bucket'],
    ['/api/reports/compliance?workHours=9-5', 'workHours'],
    ['/api/reports/compliance?timeZone=Nowhere/City', 'timeZone'],
    ['/api/reports/compliance?workDays=someday', 'workDays'],
    ['/api/reports/statements?format=pdf', 'format'],
    ['/api/reports/statements?top=0', 'top'],
    ['/api/reports/statements?from=yesterday', 'from'],
    ['/api/reports/statements?colour=red', 'colour'],
    ['/api/reports/source?object=a&auditObjectId=b', 'object'],
    ['/api/reports/source?top=1&top=2', 'top'],
  ];
  for (const [path, parameter] of cases) {
    const r = await get(path);
    t.is(r.status, 400, path);
    t.true(/^DBTAP_E_BAD_(QUERY|REQUEST)$/.test(r.body.error.code), path);
    t.is(r.body.error.parameter, parameter, path);
  }
  const unknown = await get('/api/reports/weekly');
  t.is(unknown.status, 404);
  t.is(unknown.body.error.code, 'DBTAP_E_UNKNOWN_REPORT');
  t.regex(unknown.body.error.message, /summary, server, source, compliance, statements/);
});

test('the OpenAPI document describes the report kinds, formats and parameters', (t) => {
  const doc = openApiDocument() as any;
  const op = doc.paths['/api/reports/{kind}'].get;
  t.deepEqual(op.parameters.find((p: { name: string }) => p.name === 'kind').schema.enum, ['summary', 'server', 'source', 'compliance', 'statements']);
  t.deepEqual(op.parameters.find((p: { name: string }) => p.name === 'format').schema.enum, ['json', 'csv', 'html']);
  for (const name of ['from', 'to', 'object', 'top', 'bucket', 'minRisk', 'timeZone', 'workHours', 'workDays', 'sensitive']) t.truthy(op.parameters.find((p: { name: string }) => p.name === name), name);
  t.deepEqual(Object.keys(op.responses['200'].content).sort(), ['application/json', 'text/csv', 'text/html']);
  const refs = JSON.stringify(doc).match(/#\/components\/schemas\/\w+/g)!;
  for (const ref of refs) t.truthy(doc.components.schemas[ref.split('/').pop()!], ref);
  for (const s of ['ServerReport', 'SourceReport', 'ComplianceReport', 'StatementsReport', 'StatementStat', 'ReportEvent']) t.truthy(doc.components.schemas[s], s);
});

/** Runs the command line without blocking this process's event loop (the API server above keeps serving). */
function dbtap(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import=tsx', join(repoRoot, 'packages/server/src/cli.ts'), ...args], { encoding: 'utf8', cwd: repoRoot }, (err, out, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, out, err: stderr });
    });
  });
}

test('dbtap report prints or writes a report from the store in the data directory', async (t) => {
  const json = await dbtap('report', 'statements', '--data-dir', dataDir, '--from', new Date(R0 / 1000).toISOString(), '--top', '3');
  t.is(json.code, 0, json.err);
  const r = JSON.parse(json.out) as StatementsReport;
  t.deepEqual(withoutClock(r), withoutClock(await buildReport(store, 'statements', { from: R0, top: 3 })));
  const out = join(tmp.dir, 'compliance.html');
  const html = await dbtap('report', 'compliance', '--data-dir', dataDir, '--format', 'html', '--out', out, '--tz', 'Europe/Berlin', '--work-hours', '07:00-19:00', '--work-days', 'mon-fri', '--sensitive', 'salaries');
  t.is(html.code, 0, html.err);
  t.regex(html.err, /compliance report written to .*compliance\.html \(\d+ bytes\)/);
  t.true(existsSync(out));
  const page = readFileSync(out, 'utf8');
  t.true(page.startsWith('<!doctype html>'));
  t.true(page.includes('07:00-19:00'));
  const bad = await dbtap('report', 'weekly', '--data-dir', dataDir);
  t.is(bad.code, 2);
  t.regex(bad.err, /report needs one kind: server, source, compliance, statements/);
  const missing = await dbtap('report', 'server', '--data-dir', join(tmp.dir, 'nowhere'));
  t.is(missing.code, 1);
  t.regex(missing.err, /DBTAP_E_IO: no audit store at/);
  t.false(existsSync(join(tmp.dir, 'nowhere')), 'no empty store is created');
  const tz = await dbtap('report', 'compliance', '--data-dir', dataDir, '--tz', 'Mars/Olympus');
  t.is(tz.code, 1);
  t.regex(tz.err, /DBTAP_E_BAD_QUERY: timeZone: unknown time zone/);
});
