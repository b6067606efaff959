// Audit a capture file and write the records as an Elasticsearch / OpenSearch
// `_bulk` request body (NDJSON: one action line, then one document line), so
// an existing cluster can take them with
//
//   node --import=tsx examples/elastic-bulk.ts capture.pcap --out bulk.ndjson
//   curl -H 'Content-Type: application/x-ndjson' --data-binary @bulk.ndjson http://localhost:9200/_bulk
//
// Options: --index NAME (default dbtap-audit), --op create (required by data
// streams; default index), --out FILE (default stdout), --rules FILE
// (repeatable, added to the built-in policy library).
//
// Field mapping (ECS where a field has a natural ECS home):
//   @timestamp, event.start   ts (request seen), ISO-8601 with microseconds
//   event.end                 endTs;          event.duration   durationUs * 1000 (ns)
//   event.id                  record id (also the document _id, so re-sending is idempotent)
//   event.kind                "alert" for alert records, else "event"
//   event.category / .type    database (+ authentication for logins) / access, change, start, end, error
//   event.action              verb (DROP TABLE, SELECT...), command, or the alert's rule id
//   event.outcome             ok -> success, error -> failure, unknown -> unknown
//   event.severity            0-8 from the risk (the scale of the CEF formatter)
//   source.ip / .port         client;         destination.ip / .port   database server
//   network.transport / .protocol   tcp / dbType (mysql, postgres)
//   user.name                 database user;  tls.established  tls
//   error.code / .message     database error code (with SQLSTATE) and message
//   rule.id / rule.name       matched rule ids (always a list); an alert's rule and name
//   message                   an alert's reason, else the one-line summary notifications use
// ECS has no database field set; db.* follows OpenTelemetry's database
// conventions: db.system (dbType), db.name (database), db.statement (sql),
// db.operation (verb). Everything else is kept under dbtap.* with the audit
// record's own names (docs/audit-record.md).
import { closeSync, openSync, writeSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { formatTimestamp, isDbtapError, type AuditEvent } from '@dbtap/core';
import { auditCaptureFile, cefSeverity, describeNotice, loadRuleSelection, rulesProcessor, toNdjson } from '@dbtap/server';

const CHANGE_TYPES = new Set(['insert', 'update', 'delete', 'merge', 'ddl', 'dcl']);

/** Sets a dotted path in a nested object; absent and empty values are left out. */
function put(doc: Record<string, unknown>, path: string, value: unknown): void {
  if (value === undefined || value === null || value === '' || (Array.isArray(value) && value.length === 0)) return;
  const keys = path.split('.');
  let o = doc;
  for (const k of keys.slice(0, -1)) o = (o[k] ??= {}) as Record<string, unknown>;
  o[keys[keys.length - 1]!] = value;
}

/** One audit record (or alert) as an ECS-style document. */
export function toEcs(e: AuditEvent): Record<string, unknown> {
  const d: Record<string, unknown> = {};
  const category = e.kind === 'login' ? ['authentication', 'database'] : ['database'];
  const type = e.kind === 'login' ? ['start'] : e.kind === 'logout' ? ['end'] : CHANGE_TYPES.has(e.statementType ?? '') ? ['change'] : ['access'];
  if (e.status === 'error') type.push('error');
  put(d, '@timestamp', formatTimestamp(e.ts));
  put(d, 'message', e.alert?.reason ?? describeNotice({ type: 'event', event: e }));
  put(d, 'event.id', e.id);
  put(d, 'event.kind', e.kind === 'alert' ? 'alert' : 'event');
  put(d, 'event.category', category);
  put(d, 'event.type', type);
  put(d, 'event.action', e.alert?.ruleId ?? e.verb ?? e.command ?? e.kind);
  put(d, 'event.outcome', e.status === 'ok' ? 'success' : e.status === 'error' ? 'failure' : 'unknown');
  put(d, 'event.severity', cefSeverity(e.risk));
  put(d, 'event.start', formatTimestamp(e.ts));
  if (e.endTs !== undefined) put(d, 'event.end', formatTimestamp(e.endTs));
  if (e.durationUs !== undefined) put(d, 'event.duration', Math.round(e.durationUs * 1000));
  put(d, 'source.ip', e.client.ip);
  put(d, 'source.port', e.client.port);
  put(d, 'destination.ip', e.server.ip);
  put(d, 'destination.port', e.server.port);
  put(d, 'network.transport', 'tcp');
  put(d, 'network.protocol', e.dbType);
  put(d, 'user.name', e.user);
  if (e.tls !== undefined) put(d, 'tls.established', e.tls);
  if (e.status === 'error') {
    put(d, 'error.code', [e.errorCode, e.sqlState].filter((x) => x !== undefined).join(' '));
    put(d, 'error.message', e.message);
  }
  put(d, 'rule.id', e.alert ? [e.alert.ruleId] : e.ruleIds);
  put(d, 'rule.name', e.alert?.name);
  put(d, 'db.system', e.dbType);
  put(d, 'db.name', e.database);
  put(d, 'db.statement', e.sql);
  put(d, 'db.operation', e.verb);
  // dbtap's own fields, for filters and dashboards that need more than ECS carries
  const rest: Array<[string, unknown]> = [
    ['risk', e.risk], ['statement_type', e.statementType], ['fingerprint', e.fingerprint], ['command', e.command],
    ['objects', e.objects?.map((o) => (o.schema ? `${o.schema}.${o.name}` : o.name))], ['affected_rows', e.affectedRows],
    ['rows_returned', e.rowsReturned], ['bytes_in', e.bytesIn], ['bytes_out', e.bytesOut], ['flow_id', e.flowId],
    ['session_id', e.sessionId], ['db_product', e.dbProduct], ['server_version', e.serverVersion], ['client_program', e.clientProgram],
    ['client_library', e.clientLibrary], ['client_host', e.clientHost], ['os_user', e.osUser], ['audit_object_id', e.auditObjectId],
    ['alert_reason', e.alert?.reason], ['truncated', e.truncated], ['gap_before', e.gapBefore], ['mid_session', e.midSession],
  ];
  for (const [k, v] of rest) put(d, `dbtap.${k}`, v);
  return d;
}

async function main(): Promise<number> {
  let args;
  try {
    args = parseArgs({
      allowPositionals: true,
      options: { index: { type: 'string', default: 'dbtap-audit' }, op: { type: 'string', default: 'index' }, out: { type: 'string' }, rules: { type: 'string', multiple: true, default: [] } },
    });
  } catch (err) {
    process.stderr.write(`elastic-bulk: ${(err as Error).message}\n`);
    return 2;
  }
  const { values: o, positionals } = args;
  if (positionals.length !== 1 || (o.op !== 'index' && o.op !== 'create') || o.index!.length === 0) {
    process.stderr.write('usage: elastic-bulk.ts <capture.pcap|.pcapng> [--index NAME] [--op index|create] [--out FILE] [--rules FILE]...\n');
    return 2;
  }
  try {
    const rules = rulesProcessor(loadRuleSelection({ builtin: true, files: o.rules! }));
    const fd = o.out !== undefined ? openSync(o.out, 'w') : 1;
    // Lines are written in chunks of about 1 MiB, synchronously, as records arrive: memory stays flat on big captures.
    let chunk = '';
    let documents = 0;
    const flush = () => {
      if (chunk.length > 0) writeSync(fd, chunk);
      chunk = '';
    };
    const { summary } = await auditCaptureFile(positionals[0]!, {
      collect: false,
      onEvent: (record) => {
        for (const e of rules.process(record)) {
          chunk += `${toNdjson({ [o.op!]: { _index: o.index, _id: e.id } })}\n${toNdjson(toEcs(e))}\n`;
          documents++;
          if (chunk.length >= 1 << 20) flush();
        }
      },
    });
    flush();
    if (fd !== 1) closeSync(fd);
    process.stderr.write(`${documents} documents (${summary.events} records, ${documents - summary.events} alerts) from ${summary.frames} frames, ${summary.flows} flows\n`);
    if (summary.captureError !== undefined) process.stderr.write(`capture damaged, audited up to the damage: ${summary.captureError}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`elastic-bulk: ${isDbtapError(err) ? `${err.code}: ` : ''}${(err as Error).message}\n`);
    return 1;
  }
}

process.exitCode = await main();
