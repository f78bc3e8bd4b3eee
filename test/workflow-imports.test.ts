import test from 'ava';
import { ESLint } from 'eslint';

// The lint rule is what stops Node-only code from reaching the workflow bundle before the bundler does.
test('the lint rule rejects Node-only imports under lib/workflows/', async (t) => {
  const eslint = new ESLint();
  const lint = async (code: string) => {
    const [result] = await eslint.lintText(code, { filePath: 'lib/workflows/example.ts' });
    return result!.messages.filter((message) => message.ruleId === 'no-restricted-imports').length;
  };
  t.is(await lint("import { readFileSync } from 'node:fs';\nreadFileSync('x');\n"), 1);
  t.is(await lint("import { Client } from '@temporalio/client';\nexport { Client };\n"), 1);
  t.is(await lint("import pRetry from 'p-retry';\nexport { pRetry };\n"), 1);
  t.is(await lint("import { condition } from '@temporalio/workflow';\nexport { condition };\n"), 0);
  t.is(await lint("import { failureTypes } from '../errors.js';\nexport { failureTypes };\n"), 0);
});
