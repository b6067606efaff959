// DRDA messages: the DSS envelope and the DDM code points dbtap reads.
// DRDA Vol. 3 (DDM) names every command, reply message, object and
// parameter by a 16-bit code point; the values below are the wire values.

/** DSS types (the low nibble of the DSS format byte; DRDA Vol. 1, "DSS Formats"). */
export const enum DssType {
  Request = 1, // RQSDSS
  Reply = 2, // RPYDSS
  Object = 3, // OBJDSS
  EncryptedObject = 4, // encrypted OBJDSS
  RequestNoReply = 5, // RQSDSS, no reply expected
}

/** Bits of the DSS format byte above the type. */
export const enum DssFlag {
  Chained = 0x40, // another DSS follows in this chain
  ContinueOnError = 0x20,
  SameCorrelator = 0x10, // the next DSS carries the same correlation id
}

/** DDM code points (DRDA Vol. 3). */
export const enum Cp {
  // ---- commands
  EXCSAT = 0x1041, // exchange server attributes
  ACCSEC = 0x106d, // access security
  SECCHK = 0x106e, // security check
  ACCRDB = 0x2001, // access relational database
  CLSQRY = 0x2005, // close query
  CNTQRY = 0x2006, // continue query
  DSCSQLSTT = 0x2008, // describe SQL statement
  EXCSQLIMM = 0x200a, // execute immediate
  EXCSQLSTT = 0x200b, // execute prepared statement
  OPNQRY = 0x200c, // open query
  PRPSQLSTT = 0x200d, // prepare SQL statement
  RDBCMM = 0x200e, // commit
  RDBRLLBCK = 0x200f, // rollback
  EXCSQLSET = 0x2014, // SET statements
  // ---- reply messages and reply objects
  EXCSATRD = 0x1443,
  ACCSECRD = 0x14ac,
  SECCHKRM = 0x1219,
  ACCRDBRM = 0x2201,
  RDBNFNRM = 0x2211, // database not found
  RDBAFLRM = 0x221a, // database access failed
  RDBATHRM = 0x22cb, // not authorised to the database
  SQLERRRM = 0x2213,
  OPNQFLRM = 0x2212, // open query failed
  OPNQRYRM = 0x2205,
  ENDQRYRM = 0x220b,
  ENDUOWRM = 0x220c,
  RDBUPDRM = 0x2218,
  SQLCARD = 0x2408,
  SQLDARD = 0x2411,
  SQLDTARD = 0x2413,
  QRYDSC = 0x241a,
  QRYDTA = 0x241b,
  // ---- command objects
  SQLSTT = 0x2414,
  SQLATTR = 0x2450,
  SQLDTA = 0x2412,
  OUTOVR = 0x2415, // output overrides
  EXTDTA = 0x146c,
  FDODSC = 0x0010,
  FDODTA = 0x147a,
  TYPDEFNAM = 0x002f,
  TYPDEFOVR = 0x0035,
  // ---- parameters
  EXTNAM = 0x115e,
  SRVNAM = 0x116d,
  SRVRLSLV = 0x115a,
  SRVCLSNM = 0x1147,
  MGRLVLLS = 0x1404,
  SVRCOD = 0x1149,
  SECMEC = 0x11a2,
  SECCHKCD = 0x11a4,
  USRID = 0x11a0,
  PASSWORD = 0x11a1,
  SECTKN = 0x11dc,
  RDBNAM = 0x2110,
  PRDID = 0x112e,
  PRDDTA = 0x2104,
  CRRTKN = 0x2135,
  CCSIDSBC = 0x119c,
  CCSIDDBC = 0x119d,
  CCSIDMBC = 0x119e,
  PKGNAMCSN = 0x2113,
  QRYINSID = 0x215b,
  SRVDGN = 0x1153,
}

/** The name of a code point dbtap knows, for `command` and error codes. */
export const cpName: ReadonlyMap<number, string> = new Map([
  [0x1041, 'EXCSAT'], [0x106d, 'ACCSEC'], [0x106e, 'SECCHK'], [0x2001, 'ACCRDB'], [0x2005, 'CLSQRY'],
  [0x2006, 'CNTQRY'], [0x2008, 'DSCSQLSTT'], [0x200a, 'EXCSQLIMM'], [0x200b, 'EXCSQLSTT'], [0x200c, 'OPNQRY'],
  [0x200d, 'PRPSQLSTT'], [0x200e, 'RDBCMM'], [0x200f, 'RDBRLLBCK'], [0x2014, 'EXCSQLSET'], [0x2009, 'DSCRDBTBL'],
  [0x1443, 'EXCSATRD'], [0x14ac, 'ACCSECRD'], [0x1219, 'SECCHKRM'], [0x2201, 'ACCRDBRM'], [0x2211, 'RDBNFNRM'],
  [0x221a, 'RDBAFLRM'], [0x22cb, 'RDBATHRM'], [0x2213, 'SQLERRRM'], [0x2212, 'OPNQFLRM'], [0x2205, 'OPNQRYRM'],
  [0x220b, 'ENDQRYRM'], [0x220c, 'ENDUOWRM'], [0x2218, 'RDBUPDRM'], [0x2204, 'RDBNACRM'], [0x2207, 'RDBACCRM'],
  [0x2202, 'QRYNOPRM'], [0x220f, 'QRYPOPRM'], [0x220d, 'ABNUOWRM'], [0x220e, 'DTAMCHRM'], [0x2219, 'RSLSETRM'],
  [0x124c, 'SYNTAXRM'], [0x1245, 'PRCCNVRM'], [0x1254, 'CMDCHKRM'], [0x1250, 'CMDNSPRM'], [0x1251, 'PRMNSPRM'],
  [0x1252, 'VALNSPRM'], [0x1253, 'OBJNSPRM'], [0x1232, 'AGNPRMRM'], [0x1210, 'MGRLVLRM'], [0x1218, 'MGRDEPRM'],
  [0x1233, 'RSCLMTRM'], [0x123c, 'CMMRQSRM'], [0x1240, 'CMDATHRM'], [0x125f, 'TRGNSPRM'], [0x2209, 'PKGBPARM'],
  [0x2206, 'RDBACCRM'], [0x2214, 'PKGBNARM'], [0x2208, 'SQLRQSRM'],
  // A statement whose command DSS was not captured is named after its SQLSTT object.
  [0x2414, 'SQLSTT'],
]);

/** Reply messages that end (or refuse) a login. */
export const LOGIN_FAILURES: ReadonlySet<number> = new Set([Cp.RDBNFNRM, Cp.RDBAFLRM, Cp.RDBATHRM, 0x2204, 0x1210, 0x1240]);

/** One DDM object: its code point and the bytes after its 4-byte (or extended) header. */
export interface Ddm {
  readonly cp: number;
  /** The object's body (parameters or data), a view into the DSS. */
  readonly body: Uint8Array;
}

/** A reassembled DSS: header fields and the DDM objects it carries. */
export interface Dss {
  readonly type: DssType;
  readonly flags: number;
  readonly corr: number;
  readonly objects: readonly Ddm[];
  /** Bytes on the wire, headers of every segment included. */
  readonly wireBytes: number;
  /** Part of it was not captured. */
  readonly truncated: boolean;
}

/** An SQLCA as an SQLCARD (or a row's SQLCAGRP) carries it. */
export interface Sqlca {
  readonly sqlCode: number;
  readonly sqlState: string;
  /** SQLERRPROC: the product that raised it (e.g. `CSS10140`, `SQL11010`). */
  readonly proc: string;
  /** SQLERRD1..6; SQLERRD3 is the row count of DML. */
  readonly errd: readonly number[];
  /** SQLERRMC tokens, as the server separated them. */
  readonly tokens: readonly string[];
}
