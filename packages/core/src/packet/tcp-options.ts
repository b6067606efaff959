/** TCP options dbtap understands (RFC 9293 section 3.2, RFC 7323, RFC 2018). */
export interface TcpOptions {
  /** Maximum segment size (kind 2). */
  mss?: number;
  /** Window scale shift count (kind 3). */
  windowScale?: number;
  /** SACK permitted was offered (kind 4). */
  sackPermitted?: boolean;
  /** SACK blocks as [left, right) sequence pairs (kind 5). */
  sack?: Array<[number, number]>;
  /** Timestamps option value and echo reply (kind 8). */
  timestamp?: { value: number; echo: number };
  /** True when an option's length ran past the option bytes. */
  malformed?: boolean;
}

/**
 * Parses TCP option bytes (the view in `TcpHeader.options`). Unknown kinds
 * are skipped by their length; a length that runs past the end marks the
 * result `malformed` and stops.
 */
export function parseTcpOptions(bytes: Uint8Array): TcpOptions {
  const out: TcpOptions = {};
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let i = 0;
  while (i < bytes.length) {
    const kind = bytes[i]!;
    if (kind === 0) break; // End of option list
    if (kind === 1) {
      i++; // No-operation
      continue;
    }
    if (i + 1 >= bytes.length) {
      out.malformed = true;
      break;
    }
    const len = bytes[i + 1]!;
    if (len < 2 || i + len > bytes.length) {
      out.malformed = true;
      break;
    }
    switch (kind) {
      case 2:
        if (len === 4) out.mss = view.getUint16(i + 2);
        break;
      case 3:
        if (len === 3) out.windowScale = bytes[i + 2]!;
        break;
      case 4:
        out.sackPermitted = true;
        break;
      case 5: {
        const blocks: Array<[number, number]> = [];
        for (let j = i + 2; j + 8 <= i + len; j += 8) blocks.push([view.getUint32(j), view.getUint32(j + 4)]);
        out.sack = blocks;
        break;
      }
      case 8:
        if (len === 10) out.timestamp = { value: view.getUint32(i + 2), echo: view.getUint32(i + 6) };
        break;
      default:
        break;
    }
    i += len;
  }
  return out;
}
