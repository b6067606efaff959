// The one composition of the pipeline stages: decode and enrich (the
// AuditPipeline), judge (rules), mask, sink. The daemon, `dbtap audit`,
// `dbtap import` and library users all build their flow here, so a record
// meets the stages in the same order wherever it comes from.
import type { AuditEvent } from '@dbtap/core';
import type { ProtocolRegistry } from '@dbtap/protocols';
import { parseDialect, type Dialect } from '@dbtap/rules';
import { AuditPipeline, type PipelineOptions } from './pipeline.js';

/**
 * Turns each record into the records to keep: the record itself (with
 * verdict fields filled) plus any alerts it raised. The rules engine is one
 * (see {@link rulesProcessor} and {@link RuleRouter}); tests and embedders
 * may pass their own.
 */
export type RecordProcessor = (event: AuditEvent) => readonly AuditEvent[];

/** Returns a record with its sensitive values replaced (e.g. {@link RecordMasker.mask}). */
export type RecordMask = (record: AuditEvent) => AuditEvent;

/** The stages a decoded record goes through, in this order. */
export interface RecordStages {
  /** Verdict: statement analysis, risk, matched rules, and the alerts the record raised. */
  judge?: RecordProcessor | undefined;
  /** Applied to each record and alert after `judge` (rules judge the statement as sent), before the sink. */
  mask?: RecordMask | undefined;
  /** Receives every record and alert: a store queue, a printer, an array. */
  sink(record: AuditEvent): void;
}

/** Options of {@link createAuditFlow}: the pipeline's, with `onEvent` replaced by the stages. */
export interface AuditFlowOptions extends Omit<PipelineOptions, 'onEvent'>, RecordStages {}

/** judge -> mask -> sink as one function of a decoded record. */
export function composeStages(stages: RecordStages): (event: AuditEvent) => void {
  const { judge, mask, sink } = stages;
  if (judge === undefined) return mask === undefined ? (e) => sink(e) : (e) => sink(mask(e));
  if (mask === undefined) {
    return (e) => {
      for (const r of judge(e)) sink(r);
    };
  }
  return (e) => {
    for (const r of judge(e)) sink(mask(r));
  };
}

/**
 * Frames in, judged and masked records out: an {@link AuditPipeline}
 * (decode, enrich) whose records go through {@link composeStages}.
 */
export function createAuditFlow(options: AuditFlowOptions): AuditPipeline {
  const { judge, mask, sink, ...pipeline } = options;
  return new AuditPipeline({ ...pipeline, onEvent: composeStages({ judge, mask, sink }) });
}

/**
 * The SQL dialect each record's decoder declares (a decoder's optional
 * `dialect`), for the rules engine's and masker's `dialectFor` option.
 * Returns undefined where the decoder declares none (or one the lexer does
 * not know), so the record's `dbType` decides as before.
 */
export function registryDialects(registry: ProtocolRegistry): (event: AuditEvent) => Dialect | undefined {
  const known = new Map<string | undefined, Dialect | undefined>();
  return (event) => {
    const type = event.dbType;
    if (known.has(type)) return known.get(type);
    const declared = type === undefined ? undefined : (registry.get(type) as { readonly dialect?: string } | undefined)?.dialect;
    let dialect: Dialect | undefined;
    try {
      dialect = declared === undefined ? undefined : parseDialect(declared);
    } catch {
      dialect = undefined;
    }
    known.set(type, dialect);
    return dialect;
  };
}
