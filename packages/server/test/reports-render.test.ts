// Reports rendered as CSV and as self-contained HTML: figures survive the
// round trip, recorded text is escaped, charts are well-formed SVG.
import test from 'ava';
import { isDbtapError, type AuditEvent } from '@dbtap/core';
import { SqliteStore } from '../src/store/index.js';
import {
  buildReport,
  reportOptionsFromText,
  reportToCsv,
  reportToHtml,
  type ComplianceReport,
  type ServerReport,
  type SourceReport,
  type StatementsReport,
} from '../src/reports/index.js';
import { parseDays, parseDuration } from '../src/reports/options.js';
import { R0, reportLog } from './reports-helpers.js';
import { parseCsv } from './http-helpers.js';

const hostileSql = `SELECT '<script>alert(1)</script>', "a""b" FROM t WHERE x = '</code></td>'`;
const hostile: AuditEvent = {
  id: 'evil:1', kind: 'statement', flowId: 'evil', ts: R0 + 5_000_000, endTs: R0 + 9_000_000, durationUs: 4_000_000,
  client: { ip: '10.9.9.9', port: 1 }, server: { ip: '10.1.0.1', port: 3306 }, dbType: 'mysql', status: 'error', errorCode: 1146,
  message: 'Table <b>x</b> & "y" doesn\'t exist', user: '=HYPERLINK("http://evil.example/")', clientProgram: '<img src=x onerror=alert(1)>',
  sql: hostileSql, fingerprint: "select '<script>?' from t", statementType: 'select', verb: 'SELECT', objects: [{ name: '<svg onload=alert(1)>', op: 'read' }],
  risk: 'high', ruleIds: ['"><script>'], auditObjectId: 'db-<a>',
};
const store = new SqliteStore(':memory:');
const log = [...reportLog(40, 9), hostile];
const options = { sensitiveTables: ['salaries', '<svg onload=alert(1)>'], top: 30 };

test.before(async () => {
  await store.append(log);
});
test.after.always(() => store.close());

/** The tables of a multi-section CSV: blank lines separate them. */
function csvTables(text: string): Map<string, Record<string, string>[]> {
  const out = new Map<string, Record<string, string>[]>();
  for (const block of text.split('\r\n\r\n')) {
    const [header, ...rows] = parseCsv(block.endsWith('\r\n') ? block : `${block}\r\n`);
    if (header === undefined) continue;
    const objs = rows.map((r) => Object.fromEntries(header.map((h, i) => [h, r[i] ?? ''])));
    const name = objs[0]?.section ?? header[0]!;
    if (objs.some((o) => o.section !== name)) throw new Error(`table ${name} mixes sections`);
    out.set(name, objs);
  }
  return out;
}

/** Tag balance of an XML fragment (enough to prove an SVG is well-formed). */
function wellFormed(xml: string): boolean {
  const stack: string[] = [];
  for (const m of xml.matchAll(/<(\/?)([a-zA-Z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>|<|>/g)) {
    if (m[2] === undefined) return false; // a stray < or > outside a tag
    if (m[1] === '/') { if (stack.pop() !== m[2]) return false; } else if (m[4] !== '/') stack.push(m[2]);
  }
  return stack.length === 0;
}

test('statements CSV is one table whose cells equal the report', async (t) => {
  const r = (await buildReport(store, 'statements', options)) as StatementsReport;
  const rows = parseCsv(reportToCsv(r));
  const [header, ...body] = rows;
  t.deepEqual(header!.slice(0, 4), ['fingerprint', 'statementType', 'verb', 'count']);
  t.is(body.length, r.fingerprints.length);
  body.forEach((row, i) => {
    const f = r.fingerprints[i]!;
    const cell = (name: string): string => row[header!.indexOf(name)]!;
    t.is(Number(cell('count')), f.count);
    t.is(Number(cell('totalUs')), f.totalUs);
    t.is(cell('p95Us'), f.p95Us === undefined ? '' : String(f.p95Us));
    t.is(cell('sample'), f.sample ?? '');
    if (f.firstTs !== undefined) t.regex(cell('firstSeen'), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
  });
  t.true(body.some((row) => row.includes(hostileSql)), 'quotes and commas survive');
});

test('multi-table CSV: every table has a section column and the report rows', async (t) => {
  const s = (await buildReport(store, 'server', options)) as ServerReport;
  const tables = csvTables(reportToCsv(s));
  t.deepEqual([...tables.keys()], ['totals', 'volume', 'topFingerprints', 'errors', 'slowest', 'objects']);
  t.is(tables.get('totals')!.length, s.objects.length);
  t.is(tables.get('volume')!.length, s.objects.reduce((a, o) => a + o.volume.length, 0));
  t.is(tables.get('slowest')!.length, s.objects.reduce((a, o) => a + o.slowest.length, 0));
  const src = (await buildReport(store, 'source', options)) as SourceReport;
  const st = csvTables(reportToCsv(src));
  t.is(st.get('users')!.length, src.users.length);
  // A value a spreadsheet would run as a formula is defused.
  t.true(st.get('users')!.some((u) => u.key === `'=HYPERLINK("http://evil.example/")`));
  t.false(reportToCsv(src).split(/[\r\n,]/).some((c) => c.startsWith('=')));
  const c = (await buildReport(store, 'compliance', options)) as ComplianceReport;
  const ct = csvTables(reportToCsv(c));
  t.deepEqual(ct.get('sections')!.map((x) => x.id), c.sections.map((x) => x.id));
  t.is(ct.get('events')!.length, c.sections.reduce((a, x) => a + x.events.length, 0));
});

test('HTML is self-contained, escapes recorded text and draws well-formed charts', async (t) => {
  for (const kind of ['server', 'source', 'compliance', 'statements'] as const) {
    const r = await buildReport(store, kind, options);
    const html = reportToHtml(r);
    t.true(html.startsWith('<!doctype html>'), kind);
    t.regex(html, /<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">/);
    t.false(/<script/i.test(html), `${kind}: a script element`);
    // Only real tags count: recorded text shows up escaped (`&lt;img src=x&gt;`), which is harmless.
    const tags = [...html.matchAll(/<([a-zA-Z][\w-]*)([^>]*)>/g)];
    t.deepEqual(tags.map((m) => m[1]!.toLowerCase()).filter((n) => ['script', 'img', 'iframe', 'link', 'object', 'embed', 'image', 'use', 'foreignobject'].includes(n)), [], kind);
    t.deepEqual(tags.filter((m) => /\s(src|href|xlink:href|on\w+)\s*=/i.test(m[2]!)).map((m) => m[0]), [], `${kind}: a resource or handler attribute`);
    t.deepEqual([...html.matchAll(/https?:\/\/[^\s"'<)]+/g)].map((m) => m[0]).filter((u) => u !== 'http://www.w3.org/2000/svg' && !u.startsWith('http://evil.example')), [], kind);
    const svgs = [...html.matchAll(/<svg[\s\S]*?<\/svg>/g)].map((m) => m[0]);
    t.true(svgs.length > 0, `${kind}: no chart`);
    for (const svg of svgs) t.true(wellFormed(svg), `${kind}: malformed SVG ${svg.slice(0, 80)}`);
    t.true(wellFormed(html.replace(/^<!doctype html>\n/, '').replace(/<meta[^>]*>/g, '')), `${kind}: malformed HTML`);
  }
  const st = (await buildReport(store, 'statements', options)) as StatementsReport;
  const html = reportToHtml(st);
  t.true(html.includes('&lt;script&gt;alert(1)&lt;/script&gt;'));
  // One bar per fingerprint (at most 15) in the time chart.
  const bars = html.match(/<figure><figcaption>Total response time by fingerprint<\/figcaption>[\s\S]*?<\/figure>/)![0].match(/<rect /g)!.length;
  t.is(bars, Math.min(15, st.fingerprints.length));
  const srv = (await buildReport(store, 'server', options)) as ServerReport;
  const line = reportToHtml(srv).match(/<polyline [^>]*points="([^"]*)"/)!;
  t.is(line[1]!.split(' ').length, srv.objects[0]!.volume.length, 'one point per volume bucket');
  t.true(reportToHtml(srv).includes('Audit object db-&lt;a&gt;'));
});

test('text options: durations, day lists, hour ranges and their errors', (t) => {
  t.is(parseDuration('15m'), 900_000_000);
  t.is(parseDuration('90'), 90_000_000);
  t.is(parseDuration('2d'), 2 * 86_400_000_000);
  t.deepEqual(parseDays('mon-fri'), [1, 2, 3, 4, 5]);
  t.deepEqual(parseDays('fri-mon'), [0, 1, 5, 6]);
  t.deepEqual(parseDays('Saturday,0'), [0, 6]);
  const o = reportOptionsFromText(
    { from: '2024-03-29', object: 'db-a', top: '5', bucket: '1h', minRisk: 'high', timeZone: 'Europe/Paris', workHours: '07:30-19:00', workDays: 'mon-sat', sensitive: 'hr.salaries, customers' },
    { sensitiveTables: ['ignored'], workingHours: { timeZone: 'UTC', end: '17:00' } },
  );
  t.deepEqual(o, {
    from: '2024-03-29', auditObjectId: 'db-a', top: 5, bucketUs: 3_600_000_000, minRisk: 'high',
    workingHours: { timeZone: 'Europe/Paris', start: '07:30', end: '19:00', days: [1, 2, 3, 4, 5, 6] }, sensitiveTables: ['hr.salaries', 'customers'],
  });
  t.deepEqual(reportOptionsFromText({}, { minRisk: 'low' }), { minRisk: 'low' }, 'defaults stay when nothing is given');
  const bad: [Parameters<typeof reportOptionsFromText>[0], string][] = [
    [{ bucket: '5 weeks' }, 'bucket'], [{ top: 'ten' }, 'top'], [{ minRisk: 'severe' }, 'minRisk'], [{ workDays: 'funday' }, 'workDays'],
    [{ workHours: '9-5' }, 'workHours'], [{ workHours: '09:00-25:00' }, 'workHours'], [{ timeZone: 'Nowhere/City' }, 'timeZone'],
  ];
  for (const [text, parameter] of bad) {
    const err = t.throws(() => reportOptionsFromText(text));
    t.true(isDbtapError(err, 'DBTAP_E_BAD_QUERY'), JSON.stringify(text));
    t.is((err as { details?: { parameter?: string } }).details?.parameter, parameter, JSON.stringify(text));
  }
});

test('report options are validated before any query runs', async (t) => {
  const cases: [object, string][] = [
    [{ top: 0 }, 'top'], [{ top: 1001 }, 'top'], [{ bucketUs: 5 }, 'bucket'], [{ minRisk: 'severe' }, 'minRisk'],
    [{ sensitiveTables: [''] }, 'sensitiveTables'], [{ from: 'soon' }, 'from'], [{ workingHours: { days: [7] } }, 'workingHours'],
  ];
  for (const [o, parameter] of cases) {
    const err = await t.throwsAsync(buildReport(store, 'compliance', o));
    t.true(isDbtapError(err, 'DBTAP_E_BAD_QUERY'), JSON.stringify(o));
    t.is((err as { details?: { parameter?: string } }).details?.parameter, parameter, JSON.stringify(o));
  }
  // Too many buckets for the range.
  const err = await t.throwsAsync(buildReport(store, 'server', { bucketUs: 1_000_000 }));
  t.true(isDbtapError(err, 'DBTAP_E_BAD_QUERY'));
  t.regex((err as Error).message, /at most 2000/);
  const unknown = await t.throwsAsync(buildReport(store, 'weekly' as 'server'));
  t.true(isDbtapError(unknown, 'DBTAP_E_UNKNOWN_REPORT'));
});

test('reports of an empty range are complete and render', async (t) => {
  const range = { from: R0 - 86_400_000_000, to: R0 - 3_600_000_000 };
  for (const kind of ['server', 'source', 'compliance', 'statements'] as const) {
    const r = await buildReport(store, kind, range);
    t.is(r.firstTs, undefined, kind);
    t.true(reportToHtml(r).includes('no records'), kind);
    t.true(reportToCsv(r).length > 0, kind);
  }
  const st = (await buildReport(store, 'statements', range)) as StatementsReport;
  t.deepEqual(st.totals, { statements: 0, fingerprints: 0, errors: 0, timed: 0, totalUs: 0, rowsReturned: 0, affectedRows: 0 });
  const srv = (await buildReport(store, 'server', range)) as ServerReport;
  t.deepEqual(srv.objects, []);
});
