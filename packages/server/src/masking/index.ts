/**
 * Masking of sensitive values in audit records: passwords in account
 * statements, content patterns (card numbers, IBANs, ...) and literals of
 * named columns, replaced in the SQL text, bound parameters, result rows and
 * messages before records are stored or sent.
 *
 * @module
 */
export { RecordMasker, type MaskingStats } from './masker.js';
export {
  BUILTIN_PATTERNS,
  DEFAULT_MASKING,
  DEFAULT_PASSWORD_COLUMNS,
  parseMaskingConfig,
  type BuiltinPattern,
  type ConfigFail,
  type ColumnMaskRule,
  type MaskRule,
  type MaskingConfig,
  type PasswordMaskRule,
  type PatternMaskRule,
} from './config.js';
