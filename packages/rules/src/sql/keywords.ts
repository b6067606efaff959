// Keyword ids. The scanner looks every unquoted word up once (lower case) and
// stores the id beside the token, so classification, fingerprinting and the
// injection detector compare small integers instead of strings. Only words
// some consumer looks at are listed; everything else is id 0 (an identifier
// or an uninteresting keyword).

/** Keyword ids (internal; stable only within one build). */
export const K = {
  select: 1, insert: 2, update: 3, delete: 4, merge: 5, replace: 6, upsert: 7,
  create: 8, alter: 9, drop: 10, truncate: 11, rename: 12, comment: 13,
  grant: 14, revoke: 15, deny: 16,
  begin: 17, start: 18, commit: 19, rollback: 20, savepoint: 21, release: 22, end: 23, abort: 24, xa: 25,
  set: 26, show: 27, use: 28, explain: 29, describe: 30, desc: 31, call: 32, exec: 33, execute: 34,
  prepare: 35, deallocate: 36, lock: 37, unlock: 38, flush: 39, kill: 40, analyze: 41, optimize: 42,
  vacuum: 43, copy: 44, load: 45, handler: 46, do: 47, with: 48, values: 49, value: 50, table: 51,
  from: 52, join: 53, into: 54, using: 55, where: 56, on: 57, to: 58, as: 59, in: 60, limit: 61,
  offset: 62, order: 63, by: 64, asc: 65, null: 66, or: 67, and: 68, not: 69, union: 70, all: 71,
  distinct: 72, having: 73, group: 74, if: 75, exists: 76, temporary: 78, temp: 79,
  unique: 80, view: 81, index: 82, database: 83, schema: 84, user: 85, role: 86, procedure: 87,
  function: 88, trigger: 89, sequence: 90, event: 91, tablespace: 92, materialized: 93, type: 94,
  extension: 95, login: 96, synonym: 97, package: 98, body: 99, proc: 100, password: 101,
  transaction: 102, work: 103, tran: 104, isolation: 105, read: 106, only: 107, lateral: 108,
  outfile: 109, dumpfile: 110, data: 111, infile: 112, local: 113, global: 114, session: 115,
  ignore: 116, low_priority: 117, delayed: 118, high_priority: 119, quick: 120, unlogged: 121,
  cascade: 122, column: 123, definer: 124, algorithm: 125, sql: 126, security: 127,
  declare: 129, waitfor: 130, delay: 131, time: 132, sleep: 133, benchmark: 134, pg_sleep: 135,
  pg_sleep_for: 136, pg_sleep_until: 137, extractvalue: 138, updatexml: 139, load_file: 140,
  xp_cmdshell: 141, xp_dirtree: 142, xp_fileexist: 143, openrowset: 144, opendatasource: 145,
  sp_oacreate: 146, information_schema: 147, char: 148, chr: 149, ascii: 150, ord: 151,
  substring: 152, substr: 153, mid: 154, length: 155, concat: 156, group_concat: 157, version: 158,
  current_user: 159, system_user: 160, case: 161, when: 162, then: 163, else: 164, true: 165,
  false: 166, like: 167, between: 168, is: 169, rlike: 170, regexp: 171, floor: 172, rand: 173,
  count: 174, exp: 175, name_const: 176, gtid_subset: 177, utl_http: 178, utl_inaddr: 179,
  httpuritype: 180, dbms_ldap: 181, dbms_pipe: 182, dbms_lock: 183, lo_export: 184, lo_import: 185,
  program: 186, xmltype: 187, ctxsys: 188, convert: 189, cast: 190, master: 191, sysobjects: 192,
  syscolumns: 193, pg_catalog: 194, pg_shadow: 195, pg_user: 196, mysql: 197,
  sys: 199, all_tables: 200, user_tables: 201, dual: 202, shutdown: 203, xor: 204, div: 205,
  mod: 206, cross: 207, inner: 208, left: 209, right: 210, full: 211, outer: 212, natural: 213,
  straight_join: 214, partition: 215, returning: 216, output: 217, over: 218, window: 219,
  recursive: 220, loop: 221, while: 222, repeat: 223, for: 224, extract: 225, trim: 226,
  position: 227, overlay: 228, restrict: 229, nowait: 230, share: 231, mode: 232, tables: 233,
  add: 235, modify: 236, change: 237, default: 238, key: 239, primary: 240,
  foreign: 241, constraint: 242, references: 243, check: 244, collate: 245, character: 246,
  charset: 247, engine: 248, cluster: 249, reindex: 250, refresh: 251, checkpoint: 252, listen: 253,
  notify: 254, discard: 255, reset: 256, purge: 257, install: 258, uninstall: 259, backup: 260,
  restore: 261, dbcc: 262, bulk: 263, go: 264, print: 265, raiserror: 266, throw: 267, open: 268,
  close: 269, fetch: 270, cursor: 271, help: 272, checksum: 273, repair: 274, cache: 275,
  audit: 276, policy: 277, directory: 278, server: 279, wrapper: 280,
  domain: 282, aggregate: 283, operator: 284, rule: 285, publication: 286, subscription: 287,
  statistics: 288, sql_no_cache: 289, hex: 290, unhex: 291, load_extension: 292, dblink: 293,
  current_database: 294, schema_name: 296, pg_read_file: 297, pg_ls_dir: 298,
  elt: 299, make_set: 300, iif: 301, ifnull: 302, nullif: 303, coalesce: 304,
  sp_executesql: 306, sp_addlogin: 307, sp_addsrvrolemember: 308, sp_password: 309,
  sp_configure: 310, utl_file: 311, dbms_xmlgen: 312, json_keys: 313, polygon: 314,
  geometrycollection: 315, multipoint: 316, linestring: 317, st_latfromgeohash: 318,
  st_longfromgeohash: 319, st_pointfromgeohash: 320, row: 321, procedure_analyse: 322,
  information: 323, pg_database: 324, pg_tables: 325, ilike: 327, similar: 328,
  glob: 329, match: 330, against: 331, soundex: 332, escape: 333, binary: 334, interval: 335,
  instr: 336, locate: 337, bin: 339,
  sysdate: 342, now: 343, session_user: 345, rowid: 346, top: 347,
  identified: 349, privileges: 350, auth: 351, any: 352, some: 353,
  forall: 354, fulltext: 355, spatial: 356, clustered: 357, nonclustered: 358, external: 359, returns: 360, return: 361,
} as const;

/** A keyword id from {@link K}. */
export type KeywordId = (typeof K)[keyof typeof K];

// Open-addressing table keyed by a hash of the lower-case word that the
// scanner computes while it reads the word, so looking a word up allocates
// nothing (no slice); a hit is confirmed with startsWith on the lower-cased
// text. Measured: about half the scanner's time went to slice + Map.get.
const TABLE_BITS = 11;
const TABLE_MASK = (1 << TABLE_BITS) - 1;
const tableId = new Uint16Array(1 << TABLE_BITS);
const tableWord: string[] = new Array<string>(1 << TABLE_BITS).fill('');

/** Hash step over a lower-case char code (the scanner inlines the same formula). */
export function hashStep(h: number, c: number): number {
  return (Math.imul(h, 31) + c) | 0;
}

let maxLen = 0;
for (const [word, id] of Object.entries(K)) {
  let h = 0;
  for (let i = 0; i < word.length; i++) h = hashStep(h, word.charCodeAt(i));
  let slot = h & TABLE_MASK;
  while (tableId[slot] !== 0) slot = (slot + 1) & TABLE_MASK;
  tableId[slot] = id;
  tableWord[slot] = word;
  if (word.length > maxLen) maxLen = word.length;
}
/** Words longer than this cannot be keywords. */
export const MAX_KEYWORD_LENGTH = maxLen;

/** Keyword id of the word `lower[start, end)` whose hash is `h`, 0 when it is none of ours. */
export function keywordAt(lower: string, start: number, end: number, h: number): number {
  let slot = h & TABLE_MASK;
  const len = end - start;
  for (;;) {
    const id = tableId[slot]!;
    if (id === 0) return 0;
    const w = tableWord[slot]!;
    if (w.length === len && lower.startsWith(w, start)) return id;
    slot = (slot + 1) & TABLE_MASK;
  }
}

/** Keyword id of a lower-case word, 0 when it is none of ours. */
export function keywordId(lowerWord: string): number {
  let h = 0;
  for (let i = 0; i < lowerWord.length; i++) h = hashStep(h, lowerWord.charCodeAt(i));
  return keywordAt(lowerWord, 0, lowerWord.length, h);
}
