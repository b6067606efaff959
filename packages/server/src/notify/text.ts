
/**
 * At most `cap` UTF-16 units of `s`; a cut string ends in `…` and never in
 * half a surrogate pair.
 */
export function clip(s: string, cap: number): string {
  if (s.length <= cap) return s;
  if (cap <= 1) return cap <= 0 ? '' : '…';
  let end = cap - 1;
  const last = s.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--;
  return `${s.slice(0, end)}…`;
}

/** The longest prefix of `s` whose UTF-8 encoding fits in `maxBytes`, cut on a character boundary. */
export function cutUtf8(s: string, maxBytes: number): string {
  const b = Buffer.from(s, 'utf8');
  if (b.length <= maxBytes) return s;
  let end = maxBytes;
  // Back up over continuation bytes (10xxxxxx) to the start of the cut character.
  while (end > 0 && (b[end]! & 0xc0) === 0x80) end--;
  return b.subarray(0, end).toString('utf8');
}

/**
 * Builds a message that fits in `maxBytes` of UTF-8. `build(cap)` renders it
 * with every free-text field clipped to `cap` characters (`Infinity` for
 * none); the largest cap that fits is found by bisection (only oversized
 * messages pay for it). When even short fields do not fit, the message is
 * cut at the byte limit as RFC 5424 section 6.1 allows.
 */
export function fitMessage(build: (cap: number) => string, maxBytes: number): string {
  const full = build(Infinity);
  if (Buffer.byteLength(full) <= maxBytes) return full;
  const MIN_CAP = 16;
  let lo = MIN_CAP;
  let hi = maxBytes;
  let best: string | undefined;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const s = build(mid);
    if (Buffer.byteLength(s) <= maxBytes) {
      best = s;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return best ?? cutUtf8(build(MIN_CAP), maxBytes);
}
