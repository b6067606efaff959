import { DbtapError } from '@dbtap/core';
import { StoreErrorCodes } from './query.js';
import type { WorkingHours } from './types.js';

const DAY_MS = 86_400_000;
const DAY_S = 86_400;

/** Working hours after validation: minutes of the local day and a day set. */
export interface NormalizedWorkingHours {
  /** IANA time zone. */
  timeZone: string;
  /** Start, minutes after local midnight (0 to 1439). */
  startMin: number;
  /** End, minutes after local midnight (1 to 1440). */
  endMin: number;
  /** Working days, 0 = Sunday, ascending, no repeats. */
  days: number[];
}

/**
 * A span of time with one UTC offset: from the previous segment's `until`
 * (or the beginning of time) up to `until` (exclusive; absent for the last).
 */
export interface OffsetSegment {
  /** End of the segment, µs since the epoch; absent for the last segment. */
  until?: number;
  /** Local time minus UTC, µs. */
  offsetUs: number;
}

/** The longest span a report covers: 100 years. */
export const MAX_REPORT_SPAN_US = 100 * 366 * DAY_S * 1e6;

/**
 * Refuses a report span longer than {@link MAX_REPORT_SPAN_US} (or not made
 * of finite numbers) with `DBTAP_E_REPORT_RANGE`: every loop over a report's
 * span (days, buckets) is then bounded, whatever timestamps the store holds.
 */
export function checkReportSpan(fromUs: number, toUs: number): void {
  if (Number.isFinite(fromUs) && Number.isFinite(toUs) && toUs - fromUs <= MAX_REPORT_SPAN_US) return;
  throw new DbtapError(StoreErrorCodes.REPORT_RANGE, `the report spans ${formatSpan(fromUs, toUs)}, more than the 100 years a report covers: narrow it with from/to`, { from: fromUs, to: toUs });
}

function formatSpan(fromUs: number, toUs: number): string {
  const years = (toUs - fromUs) / (365.25 * DAY_S * 1e6);
  return Number.isFinite(years) ? `${Math.round(years)} years` : `${fromUs} .. ${toUs} us`;
}

function bad(message: string, parameter = 'offHours'): DbtapError {
  return new DbtapError(StoreErrorCodes.BAD_QUERY, `${parameter}${message}`, { parameter });
}

const formats = new Map<string, Intl.DateTimeFormat>();

/** A formatter giving the wall-clock fields of an instant in `timeZone`; throws `DBTAP_E_BAD_QUERY` for an unknown zone. */
function formatFor(timeZone: string, parameter = 'offHours'): Intl.DateTimeFormat {
  let f = formats.get(timeZone);
  if (f === undefined) {
    try {
      f = new Intl.DateTimeFormat('en-US', {
        timeZone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric',
      });
    } catch {
      throw bad(`.timeZone: unknown time zone ${JSON.stringify(timeZone)}`, parameter);
    }
    if (formats.size > 100) formats.clear();
    formats.set(timeZone, f);
  }
  return f;
}

/** Local time minus UTC, in ms, at the instant `ms` (whole seconds). */
export function zoneOffsetMs(timeZone: string, ms: number): number {
  const at = Math.floor(ms / 1000) * 1000;
  const parts = formatFor(timeZone).formatToParts(new Date(at));
  const get = (type: string): number => Number(parts.find((p) => p.type === type)?.value ?? 0);
  const local = Date.UTC(get('year'), get('month') - 1, get('day'), get('hour') % 24, get('minute'), get('second'));
  return local - at;
}

function hhmm(text: unknown, name: string, fallback: string, max: number, parameter: string): number {
  const v = text === undefined || text === null ? fallback : text;
  if (typeof v !== 'string') throw bad(`.${name}: expected HH:MM`, parameter);
  const m = /^(\d{1,2}):(\d{2})$/.exec(v.trim());
  if (m === null) throw bad(`.${name}: expected HH:MM, got ${JSON.stringify(v)}`, parameter);
  const min = Number(m[1]) * 60 + Number(m[2]);
  if (Number(m[2]) > 59 || min > max) throw bad(`.${name}: no such time of day ${JSON.stringify(v)}`, parameter);
  return min;
}

/**
 * Validates working hours; throws `DBTAP_E_BAD_QUERY` naming the field,
 * under `parameter` (the name the caller knows the setting by).
 */
export function normalizeWorkingHours(wh: WorkingHours, parameter = 'offHours'): NormalizedWorkingHours {
  if (wh === null || typeof wh !== 'object') throw bad(': expected an object', parameter);
  const timeZone = wh.timeZone ?? 'UTC';
  if (typeof timeZone !== 'string' || timeZone === '' || timeZone.length > 64) throw bad('.timeZone: expected an IANA time zone name', parameter);
  formatFor(timeZone, parameter);
  const startMin = hhmm(wh.start, 'start', '08:00', 1439, parameter);
  const endMin = hhmm(wh.end, 'end', '18:00', 1440, parameter);
  const days = wh.days ?? [1, 2, 3, 4, 5];
  if (!Array.isArray(days) || days.length === 0 || days.some((d) => !Number.isInteger(d) || d < 0 || d > 6)) {
    throw bad('.days: expected a non-empty list of day numbers 0 (Sunday) to 6 (Saturday)', parameter);
  }
  return { timeZone, startMin, endMin, days: [...new Set(days as number[])].sort((a, b) => a - b) };
}

/**
 * The UTC offsets of `timeZone` over [`fromUs`, `toUs`], as segments split
 * at each offset change (daylight saving, zone rule changes). The search
 * steps a day at a time and bisects each change to the second, so every
 * change in the span is found as long as changes are at least a day apart,
 * which holds for every zone in the tz database. A span over
 * {@link MAX_REPORT_SPAN_US} throws `DBTAP_E_REPORT_RANGE`.
 */
export function offsetSegments(timeZone: string, fromUs: number, toUs: number): OffsetSegment[] {
  checkReportSpan(fromUs, toUs);
  // Whole seconds throughout: zone offsets never change within a second.
  const lo = Math.floor(fromUs / 1e6);
  const hi = Math.max(lo, Math.ceil(toUs / 1e6));
  const offsetAt = (sec: number): number => zoneOffsetMs(timeZone, sec * 1000);
  const segments: OffsetSegment[] = [];
  let prev = lo;
  let prevOff = offsetAt(lo);
  for (let t = lo + DAY_S; ; t += DAY_S) {
    const at = Math.min(t, hi);
    const off = offsetAt(at);
    if (off !== prevOff) {
      // Bisect (prev, at] to the first second with another offset.
      let a = prev;
      let b = at;
      while (b - a > 1) {
        const mid = Math.floor((a + b) / 2);
        if (offsetAt(mid) === prevOff) a = mid;
        else b = mid;
      }
      segments.push({ until: b * 1e6, offsetUs: prevOff * 1000 });
      prevOff = offsetAt(b);
      // A second change within the day (never seen in practice) is caught
      // by continuing the scan from the first one.
      prev = b;
      if (prevOff !== off) { t = b; continue; }
    }
    prev = at;
    if (at >= hi) break;
  }
  segments.push({ offsetUs: prevOff * 1000 });
  return segments;
}

/** Local weekday (0 = Sunday) and minute of day of an instant, per the segments. */
export function localTime(ts: number, segments: readonly OffsetSegment[]): { day: number; minute: number } {
  const seg = segments.find((s) => s.until === undefined || ts < s.until)!;
  const local = Math.floor(ts) + seg.offsetUs;
  const days = Math.floor(local / (DAY_MS * 1000));
  return { day: (((days + 4) % 7) + 7) % 7, minute: Math.floor((local - days * DAY_MS * 1000) / 60_000_000) };
}

/** True when a local weekday and minute fall within the working hours. */
export function isWorkingTime(day: number, minute: number, wh: NormalizedWorkingHours): boolean {
  const { startMin: s, endMin: e, days } = wh;
  if (s === e) return days.includes(day);
  if (s < e) return days.includes(day) && minute >= s && minute < e;
  // Overnight: the evening part belongs to `day`, the early part to the day before.
  return (minute >= s && days.includes(day)) || (minute < e && days.includes((day + 6) % 7));
}
