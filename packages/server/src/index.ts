/**
 * The dbtap audit server: the pipeline that joins capture, reassembly,
 * protocol decoding and rules, offline audit of capture files, and the
 * `dbtap` command line.
 *
 * @packageDocumentation
 */

/** Version of the package. */
export const version = '0.1.0';
