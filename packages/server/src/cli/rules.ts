// `dbtap rules`: check rule files, list the built-in policies.
import { builtinPolicies, builtinRuleFiles, checkRuleFiles } from '@dbtap/rules';
import { UsageError, type Command } from './common.js';

export const rulesCommand: Command = {
  name: 'rules',
  usage: `  rules check FILE...      Validate rule files (diagnostics with file:line:column).
  rules list               The built-in policies and their rules.
`,
  run,
};

async function run(args: string[]): Promise<number> {
  const [sub, ...files] = args;
  if (sub === 'list') {
    for (const p of builtinPolicies()) {
      process.stdout.write(`${p.name}${p.defaultEnabled ? '' : ' (off by default)'}: ${p.description}\n  rules: ${p.ruleIds.join(', ')}\n`);
    }
    return 0;
  }
  if (sub !== 'check' || files.length === 0) throw new UsageError('usage: dbtap rules check FILE... | dbtap rules list');
  const r = checkRuleFiles(files, { include: builtinRuleFiles() });
  for (const line of r.lines) process.stdout.write(`${line}\n`);
  return r.ok ? 0 : 1;
}
