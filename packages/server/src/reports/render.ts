import { DbtapError } from '@dbtap/core';
import { StoreErrorCodes } from '../store/query.js';
import { reportToCsv } from './csv.js';
import { reportToHtml } from './html.js';
import type { Report } from './types.js';

/** Output formats of a report. */
export type ReportFormat = 'json' | 'csv' | 'html';

/** Every {@link ReportFormat}. */
export const REPORT_FORMATS: readonly ReportFormat[] = ['json', 'csv', 'html'];

/** A rendered report: the text and how to serve or save it. */
export interface RenderedReport {
  /** The document. */
  body: string;
  /** HTTP content type. */
  contentType: string;
  /** File name extension, without the dot. */
  extension: string;
}

/** Renders a report as JSON (indented), CSV or self-contained HTML. */
export function renderReport(report: Report, format: ReportFormat): RenderedReport {
  switch (format) {
    case 'json':
      return { body: `${JSON.stringify(report, null, 2)}\n`, contentType: 'application/json; charset=utf-8', extension: 'json' };
    case 'csv':
      return { body: reportToCsv(report), contentType: 'text/csv; charset=utf-8', extension: 'csv' };
    case 'html':
      return { body: reportToHtml(report), contentType: 'text/html; charset=utf-8', extension: 'html' };
    default:
      throw new DbtapError(StoreErrorCodes.BAD_QUERY, `format: expected one of ${REPORT_FORMATS.join(', ')}, got ${JSON.stringify(format)}`, { parameter: 'format' });
  }
}
