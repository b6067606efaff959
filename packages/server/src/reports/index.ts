/**
 * Reports over the audit store: server analysis per audit object, source
 * analysis per client address, user and program, compliance findings, and
 * statement statistics per fingerprint; rendered as JSON, CSV or a
 * self-contained HTML document with inline SVG charts.
 *
 * @module
 */
export * from './types.js';
export { buildReport, ReportErrorCodes } from './build.js';
export { reportToCsv } from './csv.js';
export { reportToHtml } from './html.js';
export { renderReport, REPORT_FORMATS, type ReportFormat, type RenderedReport } from './render.js';
export { reportOptionsFromText, type ReportTextOptions } from './options.js';
export { REPORT_DIMENSIONS } from '../store/report-sql.js';
