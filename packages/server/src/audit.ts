import { openCapture, type AuditEvent, type Frame } from '@dbtap/core';
import { createDefaultRegistry } from '@dbtap/protocols';
import type { RuleSet } from '@dbtap/rules';
import { createAuditFlow, registryDialects, type RecordMask, type RecordProcessor } from './compose.js';
import type { AuditPipeline, PipelineOptions, PipelineStats } from './pipeline.js';
import { loadRuleSelection, rulesProcessor } from './rules.js';

/** Options of {@link auditFrames} and {@link auditCaptureFile}. */
export interface AuditOptions extends Partial<Omit<PipelineOptions, 'onEvent' | 'ports'>> {
  /** Server ports to audit (all of them decoded by detection, with the port's default protocol as fallback). */
  ports?: readonly number[] | ReadonlyMap<number, string | undefined>;
  /** Keep up to this many result rows per statement. */
  maxRows?: number;
  /** Receives each record as it is produced (records are also returned unless `collect` is false). */
  onEvent?: (event: AuditEvent) => void;
  /** Keep the records in memory and return them (default true). */
  collect?: boolean;
  /**
   * Rules that judge every record (see {@link loadRuleSelection}): statement
   * type, verb, objects and fingerprint are filled, `risk` and `ruleIds` set,
   * and the alerts raised come out as records of kind `alert`. The SQL
   * dialect is the one each record's decoder declares, else its `dbType`'s.
   * Ignored when `judge` is given.
   */
  rules?: RuleSet;
  /** The judge stage (rules) of {@link createAuditFlow}; by default `rules`, or none. */
  judge?: RecordProcessor;
  /** The mask stage, applied to every record and alert after the judge. */
  mask?: RecordMask;
}

/** What an offline audit produced. */
export interface AuditResult {
  /** Every record, in the order the sessions produced them (empty with `collect: false`). */
  events: AuditEvent[];
  /** Pipeline counters at the end. */
  summary: AuditSummary;
}

/** Pipeline counters plus what the capture reader reported. */
export interface AuditSummary extends PipelineStats {
  /** Capture file problem that ended reading early (truncated or corrupt file), as `CODE: message`. */
  captureError?: string;
}

function pipelineFor(options: AuditOptions, events: AuditEvent[]): AuditPipeline {
  const collect = options.collect ?? true;
  const ports = options.ports === undefined ? undefined : Array.isArray(options.ports) ? new Map((options.ports as number[]).map((p) => [p, undefined])) : (options.ports as ReadonlyMap<number, string | undefined>);
  const registry = options.registry ?? createDefaultRegistry();
  const judge = options.judge ?? (options.rules !== undefined ? rulesProcessor(options.rules, { dialectFor: registryDialects(registry) }).process : undefined);
  const onEvent = options.onEvent;
  const sink = (e: AuditEvent): void => {
    if (collect) events.push(e);
    onEvent?.(e);
  };
  return createAuditFlow({
    registry,
    ...(ports !== undefined ? { ports } : {}),
    session: { ...options.session, ...(options.maxRows !== undefined ? { maxRows: options.maxRows } : {}) },
    ...(options.flows !== undefined ? { flows: options.flows } : {}),
    ...(options.detection !== undefined ? { detection: options.detection } : {}),
    ...(options.objects !== undefined ? { objects: options.objects } : {}),
    ...(options.flowIdPrefix !== undefined ? { flowIdPrefix: options.flowIdPrefix } : {}),
    judge,
    mask: options.mask,
    sink,
  });
}

/** Audits frames from any source (live capture, agent batches, tests) through {@link createAuditFlow}. */
export function auditFrames(frames: Iterable<Frame>, options: AuditOptions = {}): AuditResult {
  const events: AuditEvent[] = [];
  const pipeline = pipelineFor(options, events);
  for (const f of frames) pipeline.push(f);
  return { events, summary: pipeline.finish() };
}

/**
 * Audits a pcap or pcapng file. A truncated or corrupt file is audited up to
 * the damage and reported in `summary.captureError`; a file that cannot be
 * opened, or is not a capture, throws a `DbtapError` (`DBTAP_E_IO`,
 * `DBTAP_E_BAD_CAPTURE_FORMAT`).
 */
export async function auditCaptureFile(path: string, options: AuditOptions = {}): Promise<AuditResult> {
  const events: AuditEvent[] = [];
  const pipeline = pipelineFor(options, events);
  const reader = openCapture(path);
  try {
    for (let f = reader.next(); f !== undefined; f = reader.next()) pipeline.push(f);
  } finally {
    reader.close();
  }
  const summary: AuditSummary = pipeline.finish();
  if (reader.error !== undefined) summary.captureError = `${reader.error.code}: ${reader.error.message}`;
  return { events, summary };
}

/** Options of {@link analyzeFrames} and {@link analyzeCaptureFile}: those of an audit, with rules by default. */
export interface AnalyzeOptions extends AuditOptions {
  /** Rules that judge the records; default the built-in policy library's default policies. */
  rules?: RuleSet;
}

function withRules(options: AnalyzeOptions): AuditOptions {
  if (options.rules !== undefined || options.judge !== undefined) return options;
  return { ...options, rules: loadRuleSelection({ builtin: true, files: [] }) };
}

/**
 * {@link auditFrames} with the rules applied: every statement record carries
 * its statement type, verb, objects and fingerprint, its risk and matched
 * rule ids, and alerts come out as records of kind `alert`.
 */
export function analyzeFrames(frames: Iterable<Frame>, options: AnalyzeOptions = {}): AuditResult {
  return auditFrames(frames, withRules(options));
}

/** {@link auditCaptureFile} with the rules applied, as {@link analyzeFrames} does. */
export function analyzeCaptureFile(path: string, options: AnalyzeOptions = {}): Promise<AuditResult> {
  return auditCaptureFile(path, withRules(options));
}
