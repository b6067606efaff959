import { readKeyFile } from '../masking/config.js';
import { MIN_KEY_BYTES } from './chain.js';
import { checkKeys, configFail, type ConfigFail } from '../validate.js';

/** The `integrity:` section of the server configuration, resolved. */
export interface IntegrityConfig {
  /** The key that signs the store's hash chain, when one is configured. */
  key?: Uint8Array;
}

const defaultFail: ConfigFail = configFail();

/**
 * Resolves the chain key: the environment variable `DBTAP_INTEGRITY_KEY`
 * (the key itself), else `DBTAP_INTEGRITY_KEY_FILE`, else the section's
 * `keyFile` (a file holding the key; one trailing newline is ignored). The
 * key must be at least 16 bytes. Throws `DBTAP_E_CONFIG` naming the bad key.
 *
 * @param doc The `integrity:` section (a mapping), or `undefined` when absent.
 */
export function parseIntegrityConfig(doc: unknown, path = 'integrity', env: NodeJS.ProcessEnv = process.env, fail: ConfigFail = defaultFail): IntegrityConfig {
  let keyFile: string | undefined;
  if (doc !== undefined && doc !== null) {
    if (typeof doc !== 'object' || Array.isArray(doc)) fail(path, 'a mapping');
    const d = doc as Record<string, unknown>;
    checkKeys(d, ['keyFile'], path, fail);
    if (d.keyFile !== undefined) {
      if (typeof d.keyFile !== 'string' || d.keyFile === '') fail(`${path}.keyFile`, 'a file path');
      keyFile = d.keyFile;
    }
  }
  let key: Uint8Array | undefined;
  let from = `${path}.keyFile`;
  if (env.DBTAP_INTEGRITY_KEY) {
    key = Buffer.from(env.DBTAP_INTEGRITY_KEY, 'utf8');
    from = 'DBTAP_INTEGRITY_KEY';
  } else if (env.DBTAP_INTEGRITY_KEY_FILE) {
    key = readKeyFile(env.DBTAP_INTEGRITY_KEY_FILE, 'DBTAP_INTEGRITY_KEY_FILE', fail);
    from = 'DBTAP_INTEGRITY_KEY_FILE';
  } else if (keyFile !== undefined) {
    key = readKeyFile(keyFile, from, fail);
  }
  if (key !== undefined && key.length < MIN_KEY_BYTES) fail(from, `a key of at least ${MIN_KEY_BYTES} bytes (it has ${key.length})`);
  return key === undefined ? {} : { key };
}
