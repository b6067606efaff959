/**
 * @dbtap/rules: SQL analysis (dialect-aware lexer, statement classification,
 * object extraction, fingerprints, SQL-injection detection), the rule
 * language and its compiler, stateful detectors and the built-in policy
 * library. Depends only on `@dbtap/core` types.
 *
 * @packageDocumentation
 */
export const version = '0.1.0';

// SQL analysis
export { RuleErrorCodes } from './errors.js';
export * from './sql/dialect.js';
export { TokenType, TokenFlag, TokenBuffer, scanSql, tokenize, type Token } from './sql/lexer.js';
export { analyzeSql, primaryStatement, type AnalyzeOptions, type SqlAnalysis, type StatementAnalysis } from './sql/analyze.js';
export { fingerprint } from './sql/fingerprint.js';
export { detectSqlInjection, SQLI_REASONS, type SqlInjectionResult } from './sql/sqli.js';
export { classify, runSqlTool, type Classification, type SqlToolMode } from './sql/tool.js';

// Rule language
export type { RuleRisk, RuleAction, DetectorSpec, RuleSpec, RuleFileContent, Diagnostic, DiagnosticSeverity, AlertDetails, AlertRecord } from './rules/types.js';
export type { RuleFile, RulePath } from './rules/loader.js';
export { parseWindow } from './rules/loader.js';
export { ruleFields, type FieldKind } from './rules/fields.js';
export {
  RuleSet,
  loadRuleFiles,
  loadRuleText,
  loadRuleObjects,
  parseRuleText,
  compileRules,
  formatDiagnostic,
  checkRuleFiles,
  type CompiledRule,
  type CompiledDetector,
  type LoadResult,
  type LoadOptions,
  type CheckResult,
} from './rules/ruleset.js';
export { RuleEngine, type RuleEngineOptions, type Verdict, type RuleEngineStats } from './rules/engine.js';
export type { Predicate } from './rules/compile.js';
export { EvalContext } from './rules/context.js';

// Built-in policy library
export { builtinPolicies, builtinPolicyText, loadBuiltinPolicy, builtinRuleFiles, defaultRuleSet, type PolicyInfo } from './policies/index.js';
