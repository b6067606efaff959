/**
 * Capture files and frames to analysed audit records, with no native module
 * loaded (no better-sqlite3, pg or cap): the composition of the pipeline
 * stages, offline audit with the rules applied, masking and NDJSON output.
 * For tools and services that want dbtap's records without its stores.
 *
 * ```ts
 * import { analyzeCaptureFile } from '@dbtap/server/offline';
 * const { events } = await analyzeCaptureFile('session.pcap');
 * ```
 *
 * @module
 */
export { AuditPipeline, type PipelineOptions, type PipelineStats } from './pipeline.js';
export { composeStages, createAuditFlow, registryDialects, type AuditFlowOptions, type RecordMask, type RecordProcessor, type RecordStages } from './compose.js';
export { loadRuleSelection, rulesProcessor, type RuleSelection } from './rules.js';
export {
  analyzeCaptureFile,
  analyzeFrames,
  auditCaptureFile,
  auditFrames,
  type AnalyzeOptions,
  type AuditOptions,
  type AuditResult,
  type AuditSummary,
} from './audit.js';
export { RecordMasker, type MaskingStats } from './masking/masker.js';
export { parseMaskingConfig, type MaskingConfig } from './masking/config.js';
export { AuditObjectTable, type AuditObjectDef } from './objects.js';
export { toNdjson } from './format.js';
