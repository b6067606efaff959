// Clients send the same bytes again and again: the same statement text, the
// same result metadata, the same command tag. A session that keeps the bytes
// of the last one it decoded can compare instead of decoding again; this is
// the comparison, made without creating a view (it runs per message).

/** Whether `buf[start, end)` holds exactly the bytes of `ref`. */
export function sameBytes(buf: Uint8Array, start: number, end: number, ref: Uint8Array): boolean {
  if (end - start !== ref.length) return false;
  for (let i = 0; i < ref.length; i++) if (buf[start + i] !== ref[i]) return false;
  return true;
}
