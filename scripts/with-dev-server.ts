// Runs a command (the test runner) against one Temporal dev server for the whole run, with the coordination
// workflows bundled once. Usage: tsx scripts/with-dev-server.ts <command> [args...]
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { startDevServer } from '../lib/testing/index.js';
import { workflowsPath } from '../lib/worker.js';

const [command, ...args] = process.argv.slice(2);
if (!command) throw new TypeError('Usage: with-dev-server <command> [args...]');

const server = await startDevServer();
const scratch = mkdtempSync(join(tmpdir(), 'temporal-coordination-'));
const bundlePath = join(scratch, 'workflow-bundle.js');
const { code } = await bundleWorkflowCode({ workflowsPath, logger: undefined });
writeFileSync(bundlePath, code);

const child = spawn(command, args, {
  stdio: 'inherit',
  env: {
    ...process.env,
    TEMPORAL_ADDRESS: server.address,
    TEMPORAL_NAMESPACE: server.namespace,
    TEMPORAL_COORDINATION_BUNDLE: bundlePath,
  },
});
const forward = (signal: NodeJS.Signals) => child.kill(signal);
process.on('SIGINT', forward).on('SIGTERM', forward);
const exitCode: number = await new Promise((resolve) => child.once('close', (code) => resolve(code ?? 1)));
await server.stop();
rmSync(scratch, { recursive: true, force: true });
process.exit(exitCode);
