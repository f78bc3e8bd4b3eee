import test from 'ava';
import { bundleWorkflowCode } from '@temporalio/worker';
import { workflowsPath } from '../lib/worker.js';

test('the workflows bundle for the Temporal sandbox with no ignored modules', async (t) => {
  const { code } = await bundleWorkflowCode({
    workflowsPath,
    logger: { trace() {}, debug() {}, info() {}, warn() {}, error() {}, log() {} } as never,
  });
  t.true(code.includes('lockWorkflow'));
  t.true(code.includes('queueWorkflow'));
  t.false(/require\(["']node:/.test(code), 'no Node built-in is required by the bundle');
});
