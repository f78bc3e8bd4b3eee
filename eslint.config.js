import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// Workflow code runs in Temporal's deterministic sandbox: Node built-ins, clients and workers would break the bundle.
const nodeOnlyInWorkflows = {
  patterns: [
    { group: ['node:*'], message: 'Workflow code runs in the Temporal sandbox: no Node built-ins.' },
    {
      group: [
        '@temporalio/client',
        '@temporalio/worker',
        '@temporalio/activity',
        '@temporalio/testing',
        '@temporalio/envconfig',
      ],
      message: 'Workflow code may import only @temporalio/workflow, @temporalio/common and workflow-safe files.',
    },
    {
      // Allowed: the workflow-safe files, and the option types of lib/queue/ (type-only, erased from the bundle).
      group: [
        'p-retry',
        '../*',
        '!../errors.js',
        '!../options.js',
        '!../ids.js',
        '!../queue',
        '../queue/*',
        '!../queue/options.js',
      ],
      message: 'Not workflow-safe.',
    },
  ],
  paths: ['fs', 'path', 'crypto', 'os', 'child_process', 'net', 'http', 'https', 'events', 'stream', 'worker_threads'],
};

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'bench/results/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['lib/workflows/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', nodeOnlyInWorkflows] },
  },
);
