// Just enough DER to read who a server certificate names and when it is
// valid (RFC 5280 section 4.1):
//
//   Certificate  ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signature }
//   TBSCertificate ::= SEQUENCE {
//     [0] EXPLICIT version OPTIONAL, serialNumber INTEGER, signature AlgorithmIdentifier,
//     issuer Name, validity SEQUENCE { notBefore Time, notAfter Time }, subject Name, ... }
//   Name ::= SEQUENCE OF SET OF SEQUENCE { type OID, value DirectoryString }
//
// Every read is bounded by the enclosing element; anything unexpected gives
// undefined, never an exception.

/** What a certificate says about its subject, issuer and validity. */
export interface CertificateFacts {
  /** Subject distinguished name, most significant part last as RFC 4514 writes it reversed: `CN=..., O=..., C=...`. */
  readonly subject?: string;
  /** Issuer distinguished name. */
  readonly issuer?: string;
  /** Validity start, ISO 8601. */
  readonly notBefore?: string;
  /** Validity end, ISO 8601. */
  readonly notAfter?: string;
}

interface Tlv {
  readonly tag: number;
  /** Start of the contents. */
  readonly start: number;
  /** End of the contents. */
  readonly end: number;
}

/** The element at `at`, with its contents inside `limit`; undefined when it does not fit. */
function tlv(b: Uint8Array, at: number, limit: number): Tlv | undefined {
  if (at + 2 > limit) return undefined;
  const tag = b[at]!;
  let len = b[at + 1]!;
  let p = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || p + n > limit) return undefined;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + b[p + i]!;
    p += n;
  }
  if (p + len > limit) return undefined;
  return { tag, start: p, end: p + len };
}

const ATTRIBUTE_NAMES: Readonly<Record<string, string>> = {
  '2.5.4.3': 'CN',
  '2.5.4.5': 'serialNumber',
  '2.5.4.6': 'C',
  '2.5.4.7': 'L',
  '2.5.4.8': 'ST',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
  '1.2.840.113549.1.9.1': 'emailAddress',
  '0.9.2342.19200300.100.1.25': 'DC',
};

function oid(b: Uint8Array, t: Tlv): string {
  if (t.end <= t.start) return '';
  const first = b[t.start]!;
  const parts = [Math.min(2, Math.floor(first / 40)), first - 40 * Math.min(2, Math.floor(first / 40))];
  let v = 0;
  for (let p = t.start + 1; p < t.end; p++) {
    v = v * 128 + (b[p]! & 0x7f);
    if ((b[p]! & 0x80) === 0) {
      parts.push(v);
      v = 0;
    }
  }
  return parts.join('.');
}

function directoryString(b: Uint8Array, t: Tlv): string {
  const bytes = b.subarray(t.start, t.end);
  if (t.tag === 0x1e) {
    // BMPString: UTF-16BE
    let s = '';
    for (let i = 0; i + 1 < bytes.length; i += 2) s += String.fromCharCode((bytes[i]! << 8) | bytes[i + 1]!);
    return s;
  }
  return new TextDecoder('utf-8', { fatal: false }).decode(bytes);
}

/** A Name as `CN=..., O=...` (the order RFC 4514 prints: last RDN first). */
function name(b: Uint8Array, seq: Tlv): string | undefined {
  if (seq.tag !== 0x30) return undefined;
  const rdns: string[] = [];
  for (let p = seq.start; p < seq.end; ) {
    const set = tlv(b, p, seq.end);
    if (set === undefined || set.tag !== 0x31) return undefined;
    for (let q = set.start; q < set.end; ) {
      const atv = tlv(b, q, set.end);
      if (atv === undefined || atv.tag !== 0x30) return undefined;
      const type = tlv(b, atv.start, atv.end);
      const value = type === undefined ? undefined : tlv(b, type.end, atv.end);
      if (type === undefined || value === undefined || type.tag !== 0x06) return undefined;
      const id = oid(b, type);
      rdns.push(`${ATTRIBUTE_NAMES[id] ?? id}=${directoryString(b, value)}`);
      q = atv.end;
    }
    p = set.end;
  }
  return rdns.reverse().join(', ');
}

/** UTCTime (YYMMDDHHMMSSZ, RFC 5280 4.1.2.5.1) or GeneralizedTime (YYYYMMDDHHMMSSZ) as ISO 8601. */
function time(b: Uint8Array, t: Tlv): string | undefined {
  const s = new TextDecoder().decode(b.subarray(t.start, t.end));
  let m: RegExpExecArray | null;
  if (t.tag === 0x17 && (m = /^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)?Z$/.exec(s)) !== null) {
    const yy = Number(m[1]);
    return `${yy >= 50 ? 1900 + yy : 2000 + yy}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6] ?? '00'}Z`;
  }
  if (t.tag === 0x18 && (m = /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(?:\.\d+)?Z$/.exec(s)) !== null) {
    return `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}Z`;
  }
  return undefined;
}

/** Subject, issuer and validity of a DER certificate; undefined when it does not parse. */
export function certificateFacts(der: Uint8Array): CertificateFacts | undefined {
  const cert = tlv(der, 0, der.length);
  if (cert === undefined || cert.tag !== 0x30) return undefined;
  const tbs = tlv(der, cert.start, cert.end);
  if (tbs === undefined || tbs.tag !== 0x30) return undefined;
  let p = tbs.start;
  const fields: Tlv[] = [];
  while (p < tbs.end && fields.length < 6) {
    const f = tlv(der, p, tbs.end);
    if (f === undefined) return undefined;
    fields.push(f);
    p = f.end;
  }
  // [0] version is optional: skip it when present.
  const f = fields[0]?.tag === 0xa0 ? fields.slice(1) : fields;
  const [, , issuer, validity, subject] = f;
  if (issuer === undefined || validity === undefined || subject === undefined || validity.tag !== 0x30) return undefined;
  const nb = tlv(der, validity.start, validity.end);
  const na = nb === undefined ? undefined : tlv(der, nb.end, validity.end);
  const out: { -readonly [K in keyof CertificateFacts]: CertificateFacts[K] } = {};
  const s = name(der, subject);
  const i = name(der, issuer);
  if (s !== undefined) out.subject = s;
  if (i !== undefined) out.issuer = i;
  if (nb !== undefined) {
    const v = time(der, nb);
    if (v !== undefined) out.notBefore = v;
  }
  if (na !== undefined) {
    const v = time(der, na);
    if (v !== undefined) out.notAfter = v;
  }
  return out;
}
