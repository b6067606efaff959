/**
 * The dbtap audit server as a library: the composition of the pipeline
 * stages (decode, enrich, judge, mask, sink), offline audit of capture
 * files, the audit server daemon, the stores, the HTTP API, reports,
 * notifications, tamper evidence, masking, configuration and the audit
 * catalog.
 *
 * Code that must not load native modules (better-sqlite3, pg) imports
 * `@dbtap/server/offline` instead.
 *
 * @packageDocumentation
 */

// The pipeline and its one composition of stages
export { AuditPipeline, type FlowSessionState, type PipelineOptions, type PipelineStats } from './pipeline.js';
export { composeStages, createAuditFlow, registryDialects, type AuditFlowOptions, type RecordMask, type RecordProcessor, type RecordStages } from './compose.js';
export { loadRuleSelection, rulesProcessor, RuleRouter, type RulePart, type RuleRouterOptions, type RuleSelection } from './rules.js';

export { ServerErrorCodes } from './errors.js';

// Offline audit and record output
export { analyzeCaptureFile, analyzeFrames, auditCaptureFile, auditFrames, type AnalyzeOptions, type AuditOptions, type AuditResult, type AuditSummary } from './audit.js';
export { toNdjson } from './format.js';

// The daemon, its configuration and the audit catalog
export { AuditServer, sumPipelineStats, type AgentLimits, type AuditServerOptions, type AuditServerStats, type AuditServerWorkers } from './daemon.js';
export { defaultWorkerCount, shardOf, WorkerBatchError, WorkerPool, MAX_WORKERS, type PoolResult, type WorkerSetup } from './workers.js';
export { defaultServerConfig, loadServerConfig, type ServerConfig } from './config.js';
export { AuditObjectTable, validateAuditObjects, failWith, type AuditObjectDef, type ObjectRoute, type ValidationFailure } from './objects.js';
export { AuditCatalog, type AuditCatalogOptions, type CatalogChange } from './catalog.js';

export * from './store/index.js';
export * from './http/index.js';
export * from './reports/index.js';
export * from './notify/index.js';
export * from './integrity/index.js';
export * from './masking/index.js';
