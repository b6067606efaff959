import { RISK_LEVELS, DbtapError, type RiskLevel } from '@dbtap/core';
import { StoreErrorCodes } from '../store/query.js';
import type { WorkingHours } from '../store/types.js';
import type { ReportOptions } from './types.js';
import { normalizeWorkingHours } from '../store/hours.js';

/**
 * Report options as text, the way the HTTP API and the command line take
 * them. Every field is optional; absent ones keep the defaults given to
 * {@link reportOptionsFromText}.
 */
export interface ReportTextOptions {
  /** Range start: ISO 8601 or µs since the epoch. */
  from?: string;
  /** Range end (exclusive). */
  to?: string;
  /** Audit object id. */
  object?: string;
  /** Rows per table, 1 to 1000. */
  top?: string;
  /** Volume bucket: a number and a unit, `s`, `m`, `h` or `d` (`15m`, `1h`); a bare number is seconds. */
  bucket?: string;
  /** Lowest risk of a risky operation: `info`, `low`, `medium`, `high`. */
  minRisk?: string;
  /** IANA time zone of the working hours. */
  timeZone?: string;
  /** Working hours, `HH:MM-HH:MM`. */
  workHours?: string;
  /** Working days: names or numbers (0 = Sunday), lists and ranges, e.g. `mon-fri`, `mon,wed,fri`, `1-5`. */
  workDays?: string;
  /** Sensitive tables, comma-separated (`hr.salaries,customers`). */
  sensitive?: string;
}

function bad(parameter: string, message: string): DbtapError {
  return new DbtapError(StoreErrorCodes.BAD_QUERY, `${parameter}: ${message}`, { parameter });
}

const UNITS: Record<string, number> = { s: 1e6, m: 60e6, h: 3600e6, d: 86_400e6 };

/** Parses a duration such as `90s`, `15m`, `1h`, `7d` (a bare number is seconds) to µs. */
export function parseDuration(text: string, parameter = 'bucket'): number {
  const m = /^(\d{1,7})\s*([smhd]?)$/.exec(text.trim());
  if (m === null) throw bad(parameter, `expected a number with unit s, m, h or d (e.g. 15m), got ${JSON.stringify(text)}`);
  return Number(m[1]) * UNITS[m[2] || 's']!;
}

const DAY_NAMES = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

/** Parses working days: `mon-fri`, `sat,sun`, `1-5`, `0,6` (0 = Sunday); ranges may wrap (`fri-mon`). */
export function parseDays(text: string, parameter = 'workDays'): number[] {
  const day = (s: string): number => {
    const t = s.trim().toLowerCase();
    if (/^[0-6]$/.test(t)) return Number(t);
    const i = DAY_NAMES.indexOf(t.slice(0, 3));
    if (i < 0 || t.length < 3) throw bad(parameter, `unknown day ${JSON.stringify(s.trim())}`);
    return i;
  };
  const out = new Set<number>();
  for (const part of text.split(',')) {
    if (part.trim() === '') continue;
    const [a, b, extra] = part.split('-');
    if (extra !== undefined) throw bad(parameter, `bad range ${JSON.stringify(part.trim())}`);
    if (b === undefined) { out.add(day(a!)); continue; }
    const start = day(a!);
    const end = day(b);
    for (let d = start; ; d = (d + 1) % 7) {
      out.add(d);
      if (d === end) break;
    }
  }
  if (out.size === 0) throw bad(parameter, 'no day given');
  return [...out].sort((x, y) => x - y);
}

/** Parses `HH:MM-HH:MM` into working-hours start and end. */
export function parseHourRange(text: string, parameter = 'workHours'): { start: string; end: string } {
  const m = /^\s*(\d{1,2}:\d{2})\s*-\s*(\d{1,2}:\d{2})\s*$/.exec(text);
  if (m === null) throw bad(parameter, `expected HH:MM-HH:MM, got ${JSON.stringify(text)}`);
  return { start: m[1]!, end: m[2]! };
}

/**
 * Turns text options into {@link ReportOptions} over `defaults` (for
 * instance the server's configured working hours and sensitive tables).
 * Throws `DBTAP_E_BAD_QUERY` naming the parameter at fault.
 */
export function reportOptionsFromText(text: ReportTextOptions, defaults: ReportOptions = {}): ReportOptions {
  const o: ReportOptions = { ...defaults };
  const given = (v: string | undefined): v is string => v !== undefined && v !== '';
  if (given(text.from)) o.from = text.from;
  if (given(text.to)) o.to = text.to;
  if (text.object !== undefined) o.auditObjectId = text.object;
  if (given(text.top)) {
    if (!/^\d{1,4}$/.test(text.top.trim())) throw bad('top', 'expected an integer from 1 to 1000');
    o.top = Number(text.top);
  }
  if (given(text.bucket)) o.bucketUs = parseDuration(text.bucket);
  if (given(text.minRisk)) {
    if (!(RISK_LEVELS as readonly string[]).includes(text.minRisk)) throw bad('minRisk', `expected one of ${RISK_LEVELS.join(', ')}`);
    o.minRisk = text.minRisk as RiskLevel;
  }
  const wh: WorkingHours = { ...defaults.workingHours };
  if (given(text.timeZone)) wh.timeZone = text.timeZone;
  if (given(text.workHours)) Object.assign(wh, parseHourRange(text.workHours));
  if (given(text.workDays)) wh.days = parseDays(text.workDays);
  if (Object.keys(wh).length > 0) {
    // Validate here so that an error names the parameter the caller gave.
    try {
      normalizeWorkingHours(wh, 'workingHours');
    } catch (err) {
      const msg = (err as Error).message;
      const parameter = /timeZone/.test(msg) ? 'timeZone' : /days/.test(msg) ? 'workDays' : 'workHours';
      throw bad(parameter, msg.replace(/^\w+\.\w+: /, ''));
    }
    o.workingHours = wh;
  }
  if (text.sensitive !== undefined) o.sensitiveTables = text.sensitive.split(',').map((s) => s.trim()).filter((s) => s !== '');
  return o;
}
