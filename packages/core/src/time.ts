/**
 * A point in time as microseconds since the Unix epoch (may carry a fraction
 * for nanosecond-resolution captures). A double holds whole microseconds
 * exactly until the year 2255, and keeps sub-microsecond digits to about a
 * quarter microsecond today; a number is far cheaper than a bigint or an
 * object on the per-packet path.
 */
export type Timestamp = number;

/** Microseconds in one second. */
export const US_PER_SEC = 1_000_000;

/** Builds a {@link Timestamp} from whole seconds and a fraction in the given units per second. */
export function timestampFrom(seconds: number, fraction: number, unitsPerSecond: number): Timestamp {
  return seconds * US_PER_SEC + (fraction * US_PER_SEC) / unitsPerSecond;
}

/** Formats a {@link Timestamp} as an ISO-8601 UTC string with microseconds. */
export function formatTimestamp(ts: Timestamp): string {
  const whole = Math.floor(ts);
  const ms = Math.floor(whole / 1000);
  const iso = new Date(ms).toISOString(); // 2024-01-02T03:04:05.678Z
  const micros = String(whole % 1_000_000).padStart(6, '0');
  return `${iso.slice(0, 19)}.${micros}Z`;
}
