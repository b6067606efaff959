// Every error code of @dbtap/rules, in one table. Rule-file problems are
// diagnostics carrying these codes with file:line:column; loading functions
// throw `LOAD` listing them.

/** The `DBTAP_E_*` codes of rule loading and compiling, besides those of `@dbtap/core`. */
export const RuleErrorCodes = {
  /** Rules do not load or compile; the error lists every diagnostic. */
  LOAD: 'DBTAP_E_RULE_LOAD',
  /** A rule file is not valid YAML. */
  YAML: 'DBTAP_E_RULE_YAML',
  /** A rule file's structure is wrong: a missing or misspelt key, a value of the wrong type. */
  SCHEMA: 'DBTAP_E_RULE_SCHEMA',
  /** A condition does not parse. */
  SYNTAX: 'DBTAP_E_RULE_SYNTAX',
  /** A rule id is defined twice in one file. */
  DUPLICATE: 'DBTAP_E_RULE_DUPLICATE',
  /** `append` or `override` of a list, macro or rule no earlier file defines. */
  APPEND_MISSING: 'DBTAP_E_RULE_APPEND_MISSING',
  /** A condition names an unknown field. */
  UNKNOWN_FIELD: 'DBTAP_E_RULE_UNKNOWN_FIELD',
  /** A bare name is neither a macro nor a boolean field. */
  UNKNOWN_NAME: 'DBTAP_E_RULE_UNKNOWN_NAME',
  /** An operator does not apply to the field's type. */
  TYPE: 'DBTAP_E_RULE_TYPE',
  /** A value does not fit its field or operator (a number, a time, an address). */
  BAD_VALUE: 'DBTAP_E_RULE_BAD_VALUE',
  /** A regular expression does not compile. */
  BAD_REGEX: 'DBTAP_E_RULE_BAD_REGEX',
  /** Macros refer to each other in a cycle. */
  MACRO_CYCLE: 'DBTAP_E_RULE_MACRO_CYCLE',
  /** Lists refer to each other in a cycle. */
  LIST_CYCLE: 'DBTAP_E_RULE_LIST_CYCLE',
} as const;
