import { TextDecoder } from 'node:util';
import { decodeUtf8 } from './bytes.js';
import { DbtapError, ErrorCodes } from './errors.js';

/**
 * Text decoding for the charsets databases put on the wire. Node's full-ICU
 * `TextDecoder` does the work; this module maps database charset names
 * (MySQL collation names, PostgreSQL encodings, Windows code pages) onto the
 * WHATWG labels it understands, and caches one decoder per label.
 */

/** Charset names accepted by {@link decodeText}, in WHATWG label form. */
export type Charset = 'utf-8' | 'gbk' | 'gb18030' | 'big5' | 'utf-16le' | 'utf-16be' | 'latin1' | 'shift_jis' | 'euc-jp' | 'euc-kr' | 'windows-1251' | 'windows-1252' | (string & {});

const aliases: Record<string, string> = {
  utf8: 'utf-8',
  utf8mb3: 'utf-8',
  utf8mb4: 'utf-8',
  'utf-8': 'utf-8',
  unicode: 'utf-8',
  ascii: 'windows-1252',
  sql_ascii: 'windows-1252',
  latin1: 'windows-1252', // MySQL latin1 is cp1252; WHATWG latin1 is too
  'iso-8859-1': 'windows-1252',
  iso88591: 'windows-1252',
  cp1252: 'windows-1252',
  win1252: 'windows-1252',
  gbk: 'gbk',
  cp936: 'gbk',
  gb2312: 'gbk', // GBK is a superset of GB2312
  euc_cn: 'gbk',
  gb18030: 'gb18030',
  big5: 'big5',
  big5hkscs: 'big5',
  ucs2: 'utf-16be', // MySQL ucs2 is big-endian
  utf16: 'utf-16be',
  utf16le: 'utf-16le',
  'utf-16le': 'utf-16le',
  'utf-16be': 'utf-16be',
  sjis: 'shift_jis',
  cp932: 'shift_jis',
  shift_jis: 'shift_jis',
  ujis: 'euc-jp',
  euc_jp: 'euc-jp',
  eucjpms: 'euc-jp',
  euckr: 'euc-kr',
  euc_kr: 'euc-kr',
  uhc: 'euc-kr',
  cp1251: 'windows-1251',
  win1251: 'windows-1251',
  koi8r: 'koi8-r',
  koi8_r: 'koi8-r',
  binary: 'windows-1252',
};

const decoders = new Map<string, TextDecoder>();

/**
 * Normalises a database charset name to a decoder label, or returns
 * `undefined` when it is unknown. Case, dashes and underscores are ignored
 * where that is unambiguous (`UTF8`, `utf-8`, `UTF_8`).
 */
export function normalizeCharset(name: string): string | undefined {
  const lower = name.trim().toLowerCase();
  const hit = aliases[lower] ?? aliases[lower.replace(/[-_]/g, '')];
  if (hit !== undefined) return hit;
  try {
    return new TextDecoder(lower).encoding;
  } catch {
    return undefined;
  }
}

function decoderFor(charset: string): TextDecoder {
  let d = decoders.get(charset);
  if (d === undefined) {
    const label = normalizeCharset(charset);
    if (label === undefined) {
      throw new DbtapError(ErrorCodes.UNKNOWN_CHARSET, `unknown charset '${charset}'`, { charset });
    }
    d = new TextDecoder(label, { fatal: false });
    decoders.set(charset, d);
  }
  return d;
}

/**
 * Decodes `bytes` as text in `charset`. Invalid sequences become U+FFFD;
 * an unknown charset throws `DBTAP_E_UNKNOWN_CHARSET` (check names once with
 * {@link normalizeCharset} when configuring, not per record).
 */
export function decodeText(bytes: Uint8Array, charset: Charset = 'utf-8'): string {
  if (charset === 'utf-8' || charset === 'utf8' || charset === 'utf8mb4') return decodeUtf8(bytes);
  return decoderFor(charset).decode(bytes);
}

/** True when `name` is a charset {@link decodeText} can decode. */
export function isKnownCharset(name: string): boolean {
  return normalizeCharset(name) !== undefined;
}
