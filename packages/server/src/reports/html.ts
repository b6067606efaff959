// Reports as one self-contained HTML file: inline CSS and inline SVG charts,
// no script, no external asset (the Content-Security-Policy forbids them),
// every piece of recorded text escaped.
import { formatTimestamp } from '@dbtap/core';
import type {
  ComplianceReport,
  ComplianceSection,
  Report,
  ReportEvent,
  ServerReport,
  ServerSection,
  SourceReport,
  SourceStat,
  StatementStat,
  StatementsReport,
  VolumePoint,
} from './types.js';

/** Escapes text for HTML and SVG content and attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '"' ? '&quot;' : '&#39;'));
}

const esc = (v: unknown): string => (v === undefined || v === null ? '' : escapeHtml(String(v)));

/** A duration in µs as text with a suitable unit. */
export function formatDuration(us: number | undefined): string {
  if (us === undefined) return '';
  if (us < 1000) return `${Math.round(us)} µs`;
  if (us < 1_000_000) return `${(us / 1000).toFixed(us < 10_000 ? 2 : 1)} ms`;
  if (us < 60_000_000) return `${(us / 1_000_000).toFixed(us < 10_000_000 ? 2 : 1)} s`;
  // Longer spans (bucket widths, long statements): the largest unit, one decimal when not whole.
  const [unit, size] = us >= 86_400_000_000 ? ['d', 86_400_000_000] : us >= 3_600_000_000 ? ['h', 3_600_000_000] : ['min', 60_000_000];
  const n = us / size;
  return `${Number.isInteger(n) ? n : n.toFixed(1)} ${unit}`;
}

const time = (ts: number | undefined): string => (ts === undefined ? '' : formatTimestamp(ts).replace('T', ' ').replace(/\.\d+Z$/, 'Z'));
const int = (n: number): string => n.toLocaleString('en-US');
const clip = (s: string, n: number): string => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

const COLORS = ['#2f6fb0', '#c0392b', '#27ae60', '#8e44ad', '#d68910'];

/** One bar of a bar chart. */
interface Bar {
  label: string;
  value: number;
  /** Value text shown beside the bar (the value when absent). */
  text?: string;
}

/** A horizontal bar chart as inline SVG; labels are clipped, the full text is in each bar's tooltip. */
function barChart(title: string, bars: readonly Bar[]): string {
  if (bars.length === 0) return '';
  const W = 760;
  const labelW = 300;
  const valueW = 90;
  const rowH = 22;
  const top = 8;
  const H = top + bars.length * rowH + 8;
  const max = Math.max(...bars.map((b) => b.value), 1);
  const plot = W - labelW - valueW;
  const rows = bars.map((b, i) => {
    const y = top + i * rowH;
    const w = Math.max(b.value > 0 ? 1 : 0, (b.value / max) * plot);
    const text = b.text ?? int(b.value);
    return `<g><title>${esc(b.label)}: ${esc(text)}</title>` +
      `<text x="${labelW - 6}" y="${y + 15}" text-anchor="end" class="lbl">${esc(clip(b.label, 46))}</text>` +
      `<rect x="${labelW}" y="${y + 3}" width="${w.toFixed(1)}" height="${rowH - 6}" fill="${COLORS[0]}"/>` +
      `<text x="${(labelW + w + 6).toFixed(1)}" y="${y + 15}" class="val">${esc(text)}</text></g>`;
  });
  return `<figure><figcaption>${esc(title)}</figcaption><svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(title)}">${rows.join('')}</svg></figure>`;
}

/** One line of a line chart. */
interface Series {
  name: string;
  values: readonly number[];
}

/** A line chart over time buckets as inline SVG, with a y-axis scale and first/middle/last time labels. */
function lineChart(title: string, xs: readonly number[], series: readonly Series[]): string {
  if (xs.length === 0) return '';
  const W = 760;
  const H = 240;
  const left = 56;
  const right = 12;
  const top = 12;
  const bottom = 40;
  const pw = W - left - right;
  const ph = H - top - bottom;
  const max = Math.max(1, ...series.flatMap((s) => s.values));
  const x = (i: number): number => left + (xs.length === 1 ? pw / 2 : (i / (xs.length - 1)) * pw);
  const y = (v: number): number => top + ph - (v / max) * ph;
  const grid = [0, 0.5, 1].map((f) => {
    const v = Math.round(max * f);
    return `<line x1="${left}" x2="${W - right}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" class="grid"/><text x="${left - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end" class="val">${int(v)}</text>`;
  });
  const ticks = [...new Set([0, Math.floor((xs.length - 1) / 2), xs.length - 1])].map((i) => {
    const anchor = i === 0 ? 'start' : i === xs.length - 1 ? 'end' : 'middle';
    return `<text x="${x(i).toFixed(1)}" y="${H - bottom + 16}" text-anchor="${xs.length === 1 ? 'middle' : anchor}" class="val">${esc(time(xs[i]))}</text>`;
  });
  const lines = series.map((s, k) => {
    const pts = s.values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
    const color = COLORS[k % COLORS.length];
    const dots = xs.length <= 60 ? s.values.map((v, i) => `<circle cx="${x(i).toFixed(1)}" cy="${y(v).toFixed(1)}" r="2" fill="${color}"><title>${esc(s.name)} ${esc(time(xs[i]))}: ${int(v)}</title></circle>`).join('') : '';
    return `<polyline fill="none" stroke="${color}" stroke-width="1.6" points="${pts}"/>${dots}`;
  });
  const legend = series.map((s, k) => `<rect x="${left + k * 130}" y="${H - 14}" width="10" height="10" fill="${COLORS[k % COLORS.length]}"/><text x="${left + k * 130 + 14}" y="${H - 5}" class="lbl">${esc(s.name)}</text>`);
  return `<figure><figcaption>${esc(title)}</figcaption><svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(title)}">` +
    `${grid.join('')}<line x1="${left}" x2="${left}" y1="${top}" y2="${top + ph}" class="axis"/>${ticks.join('')}${lines.join('')}${legend.join('')}</svg></figure>`;
}

/** A table cell: text, or a number (right-aligned). */
type Td = string | number | undefined | { html: string };

function table(headers: readonly string[], rows: readonly Td[][], empty = 'Nothing in this range.'): string {
  if (rows.length === 0) return `<p class="empty">${esc(empty)}</p>`;
  const td = (v: Td): string => {
    if (typeof v === 'number') return `<td class="n">${esc(Number.isInteger(v) ? int(v) : v.toFixed(2))}</td>`;
    if (v !== undefined && typeof v === 'object') return `<td>${v.html}</td>`;
    return `<td>${esc(v)}</td>`;
  };
  return `<table><thead><tr>${headers.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map(td).join('')}</tr>`).join('')}</tbody></table>`;
}

const code = (s: string | undefined, n = 300): Td => (s === undefined || s === '' ? '' : { html: `<code title="${esc(s)}">${esc(clip(s, n))}</code>` });
const fpLabel = (fp: string): string => (fp === '' ? '(no statement text)' : fp);
const none = (s: string): string => (s === '' ? '(none)' : s);

function definitionList(items: readonly [string, string][]): string {
  return `<dl>${items.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join('')}</dl>`;
}

function statementTable(list: readonly StatementStat[]): string {
  return table(
    ['#', 'Fingerprint', 'Type', 'Count', 'Errors', 'Total', 'Avg', 'p95', 'Max', 'Time %', 'Rows sent', 'Rows changed', 'Sample'],
    list.map((s, i) => [
      i + 1, code(fpLabel(s.fingerprint), 160), s.statementType, s.count, s.errors, formatDuration(s.totalUs), formatDuration(s.avgUs),
      formatDuration(s.p95Us), formatDuration(s.maxUs), `${(s.timeShare * 100).toFixed(1)} %`, s.rowsReturned, s.affectedRows, code(s.sample, 160),
    ]),
  );
}

function eventTable(list: readonly ReportEvent[], empty?: string): string {
  return table(
    ['Time', 'Kind', 'User', 'Client', 'Program', 'Statement', 'Status', 'Duration', 'Risk', 'Rules'],
    list.map((e) => [
      time(e.ts), e.kind, e.user, e.clientIp, e.program, code(e.sql),
      e.status === 'error' ? `error ${e.errorCode ?? ''}${e.message ? `: ${e.message}` : ''}` : e.status,
      formatDuration(e.durationUs), e.risk, e.ruleIds?.join(', '),
    ]),
    empty,
  );
}

function volumeChart(title: string, volume: readonly VolumePoint[]): string {
  return lineChart(title, volume.map((v) => v.ts), [
    { name: 'statements', values: volume.map((v) => v.statements) },
    { name: 'failed statements', values: volume.map((v) => v.errors) },
    { name: 'logins', values: volume.map((v) => v.logins) },
    { name: 'failed logins', values: volume.map((v) => v.failedLogins) },
  ]);
}

function statementsBody(r: StatementsReport): string {
  const t = r.totals;
  return definitionList([
    ['Statements', int(t.statements)], ['Fingerprints', int(t.fingerprints)], ['Failed', int(t.errors)],
    ['Total response time', formatDuration(t.totalUs)], ['95th percentile', formatDuration(t.p95Us)],
    ['Rows returned', int(t.rowsReturned)], ['Rows changed', int(t.affectedRows)],
  ]) +
    barChart('Total response time by fingerprint', r.fingerprints.slice(0, 15).map((s) => ({ label: fpLabel(s.fingerprint), value: s.totalUs, text: formatDuration(s.totalUs) }))) +
    `<h2>Fingerprints</h2>${statementTable(r.fingerprints)}`;
}

function serverSection(s: ServerSection): string {
  const t = s.totals;
  return `<section><h2>Audit object ${esc(none(s.auditObjectId))}</h2>` +
    definitionList([
      ['Records', int(t.records)], ['Sessions', int(t.sessions)], ['Logins', `${int(t.logins)} (${int(t.failedLogins)} failed)`],
      ['Statements', `${int(t.statements)} (${int(t.errors)} failed)`], ['Total response time', formatDuration(t.totalUs)], ['Alerts', int(t.alerts)],
    ]) +
    volumeChart('Volume over time', s.volume) +
    barChart('Most frequent fingerprints', s.topFingerprints.slice(0, 15).map((f) => ({ label: fpLabel(f.fingerprint), value: f.count }))) +
    `<h3>Top fingerprints</h3>${statementTable(s.topFingerprints)}` +
    `<h3>Errors</h3>${table(['Code', 'Count', 'Message', 'Fingerprint', 'Last seen'], s.errors.map((e) => [e.code, e.count, e.message, code(e.fingerprint, 120), time(e.lastTs)]), 'No errors in this range.')}` +
    `<h3>Slowest statements</h3>${eventTable(s.slowest)}` +
    barChart('Objects touched', s.objects.slice(0, 15).map((o) => ({ label: o.object, value: o.count }))) +
    `<h3>Objects touched</h3>${table(['Object', 'Statements', 'Failed', 'By type', 'Last access'], s.objects.map((o) => [o.object, o.count, o.errors, Object.entries(o.byType).map(([k, v]) => `${k} ${v}`).join(', '), time(o.lastTs)]))}` +
    '</section>';
}

function serverBody(r: ServerReport): string {
  if (r.objects.length === 0) return '<p class="empty">No records in this range.</p>';
  return `<p>Volume buckets of ${esc(formatDuration(r.bucketUs))}.</p>${r.objects.map(serverSection).join('')}`;
}

function sourceBody(r: SourceReport): string {
  const part = (title: string, list: readonly SourceStat[]): string =>
    `<section><h2>${esc(title)}</h2>` +
    barChart(`Statements by ${title.toLowerCase()}`, list.slice(0, 15).map((s) => ({ label: none(s.key), value: s.statements }))) +
    table(['Value', 'Sessions', 'Logins', 'Failed logins', 'Statements', 'Failed', 'Total time', 'Max risk', 'First seen', 'Last seen'],
      list.map((s) => [none(s.key), s.sessions, s.logins, s.failedLogins, s.statements, s.errors, formatDuration(s.totalUs), s.maxRisk, time(s.firstTs), time(s.lastTs)])) +
    '</section>';
  return part('Client address', r.clientIps) + part('User', r.users) + part('Program', r.programs) +
    `<section><h2>Combinations</h2>${table(['Client', 'User', 'Program', 'Records', 'Sessions', 'Failed', 'Last seen'], r.combinations.map((c) => [none(c.clientIp), none(c.user), none(c.program), c.records, c.sessions, c.errors, time(c.lastTs)]))}</section>`;
}

function complianceSection(s: ComplianceSection): string {
  const parts = s.breakdowns.filter((b) => b.entries.length > 0).map((b) => `<div class="bd"><h4>By ${esc(b.by)}</h4>${table([b.by, 'Count', 'Failed'], b.entries.map((e) => [none(e.key), e.count, e.errors]))}</div>`);
  return `<section id="${esc(s.id)}"><h2>${esc(s.title)}: ${int(s.count)}</h2><p>${esc(s.description)} ${int(s.errors)} failed, from ${int(s.sessions)} sessions.</p>` +
    `<div class="bds">${parts.join('')}</div>` +
    `<h3>Latest</h3>${eventTable(s.events, 'None found.')}</section>`;
}

function complianceBody(r: ComplianceReport): string {
  const wh = r.settings.workingHours;
  return definitionList([
    ['Risky from', r.settings.minRisk], ['Working hours', `${wh.start}-${wh.end}, days ${wh.days.join(',')} (0 = Sunday), ${wh.timeZone}`],
    ['Sensitive tables', r.settings.sensitiveTables.join(', ') || '(none configured)'],
  ]) +
    barChart('Findings', r.sections.map((s) => ({ label: s.title, value: s.count }))) +
    r.sections.map(complianceSection).join('');
}

const STYLE = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1d232a;margin:24px auto;max-width:1200px;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #d5dbe1;padding-bottom:4px}
h3{font-size:15px;margin:18px 0 6px}h4{font-size:13px;margin:8px 0 4px}
.meta{color:#5b6770;margin:0 0 16px}
dl{display:grid;grid-template-columns:max-content auto;gap:2px 16px;margin:8px 0}dt{color:#5b6770}dd{margin:0}
table{border-collapse:collapse;margin:6px 0 12px;font-size:13px}th,td{border:1px solid #d5dbe1;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#eef2f5}td.n{text-align:right;font-variant-numeric:tabular-nums}
code{font:12px ui-monospace,Menlo,Consolas,monospace;white-space:pre-wrap;word-break:break-all}
figure{margin:10px 0}figcaption{font-weight:600;margin-bottom:4px}
svg .lbl{font:12px system-ui,sans-serif;fill:#1d232a}svg .val{font:11px system-ui,sans-serif;fill:#5b6770}
svg .grid{stroke:#e3e8ec}svg .axis{stroke:#9aa5ad}
.empty{color:#5b6770;font-style:italic}.bds{display:flex;flex-wrap:wrap;gap:0 24px}
@media print{body{margin:0}section{break-inside:avoid-page}}
`;

const TITLES: Record<Report['kind'], string> = {
  server: 'Server analysis',
  source: 'Source analysis',
  compliance: 'Compliance',
  statements: 'Statement statistics',
};

/**
 * A report as one self-contained HTML document: inline CSS, charts as
 * inline SVG (bars and lines), no script and no external resource (a
 * Content-Security-Policy meta tag forbids both), all recorded text escaped.
 */
export function reportToHtml(report: Report): string {
  let body: string;
  switch (report.kind) {
    case 'statements': body = statementsBody(report); break;
    case 'server': body = serverBody(report); break;
    case 'source': body = sourceBody(report); break;
    case 'compliance': body = complianceBody(report); break;
  }
  const range = `${report.from !== undefined ? time(report.from) : 'the beginning'} to ${report.to !== undefined ? time(report.to) : 'now'}`;
  const seen = report.firstTs !== undefined ? `; records from ${time(report.firstTs)} to ${time(report.lastTs)}` : '; no records';
  const title = `dbtap ${TITLES[report.kind]}`;
  return '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">' +
    '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'">' +
    `<meta name="viewport" content="width=device-width, initial-scale=1"><title>${esc(title)}</title><style>${STYLE}</style></head><body>` +
    `<h1>${esc(title)}</h1><p class="meta">Range: ${esc(range)}${esc(seen)}${report.auditObjectId !== undefined ? `; audit object ${esc(none(report.auditObjectId))}` : ''}. Generated ${esc(time(report.generatedAt))}.</p>` +
    `${body}</body></html>\n`;
}
