// Shared by the HTTP API tests: one request with its body read as text and,
// when it is JSON, parsed; and an RFC 4180 CSV parser for the exports.

/** A response: status, headers, raw text, and the parsed JSON body (undefined when the text is not JSON). */
export interface HttpResult {
  status: number;
  headers: Headers;
  text: string;
  body: any;
}

/** `fetch` that reads the whole body. */
export async function request(url: string, init?: RequestInit): Promise<HttpResult> {
  const r = await fetch(url, init);
  const text = await r.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: r.status, headers: r.headers, text, body };
}

/** RFC 4180 parser (CRLF rows, quoted cells with doubled quotes). */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { cell += '"'; i++; } else if (c === '"') quoted = false; else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') { row.push(cell); cell = ''; } else if (c === '\r' && text[i + 1] === '\n') { row.push(cell); rows.push(row); row = []; cell = ''; i++; } else cell += c;
  }
  if (cell !== '' || row.length > 0) { row.push(cell); rows.push(row); }
  return rows;
}
