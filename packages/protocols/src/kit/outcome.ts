// The three outcomes of decoding (DESIGN.md "Three outcomes stay distinct"),
// as numbers so that the hot path returns them as values instead of
// throwing or allocating. A decode function returns a value or one of them:
// a length or count (>= 0), an object, or a negative outcome.

/** What a decode step concluded when it produced no value. */
export const Outcome = {
  /** The bytes so far are a plausible prefix: wait for more. */
  More: -1,
  /** The bytes cannot be what the protocol says they are. */
  Malformed: -2,
  /** The capture holds fewer bytes than the wire carried (gap, snap length, size limit). */
  Truncated: -3,
} as const;
/** An {@link Outcome} value. */
export type Outcome = (typeof Outcome)[keyof typeof Outcome];

/** A decode result: the value, or one of the {@link Outcome}s. `T` must not be a negative number. */
export type Result<T> = T | Outcome;

/** True when `v` is one of the {@link Outcome}s rather than a value. */
export function isOutcome(v: unknown): v is Outcome {
  return typeof v === 'number' && v < 0 && v >= -3;
}
