// Runs a command (the test runner) against one Temporal dev server for the whole run, with the package built and the
// coordination workflows bundled once. The server's and the workers' logs go to files in one folder, printed at the
// start; their tails are printed if the command fails. Usage: tsx scripts/with-dev-server.ts <command> [args...]
import { spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { startDevServer } from '../lib/testing/index.js';
import { workflowsPath } from '../lib/worker.js';
import { ensureBuilt } from './ensure-built.js';
import { fileLogger, LOG_DIR_ENV, logTails, makeLogDirectory } from './logs.js';

const [command, ...args] = process.argv.slice(2);
if (!command) throw new TypeError('Usage: with-dev-server <command> [args...]');

const logDir = makeLogDirectory('test');
console.error(`Logs of the dev server and the workers: ${logDir}`);
// Test files that import the package by name need dist/; building here, once, keeps two of them from building at once.
// A failed build fails only those files (they try again and report it), not a run that does not need dist/.
try {
  ensureBuilt(console.error);
} catch (error) {
  console.error((error as Error).message);
}
const server = await startDevServer({ logFile: join(logDir, 'dev-server.log') });
const bundlePath = join(logDir, 'workflow-bundle.js');
const { code } = await bundleWorkflowCode({ workflowsPath, logger: fileLogger(join(logDir, 'bundle.log'), 'WARN') });
writeFileSync(bundlePath, code);

const child = spawn(command, args, {
  stdio: 'inherit',
  env: {
    ...process.env,
    TEMPORAL_ADDRESS: server.address,
    TEMPORAL_NAMESPACE: server.namespace,
    TEMPORAL_COORDINATION_BUNDLE: bundlePath,
    [LOG_DIR_ENV]: logDir,
  },
});
const forward = (signal: NodeJS.Signals) => child.kill(signal);
process.on('SIGINT', forward).on('SIGTERM', forward);
const exitCode: number = await new Promise((resolve) => child.once('close', (code) => resolve(code ?? 1)));
await server.stop();
rmSync(bundlePath, { force: true });
if (exitCode !== 0) {
  console.error(`\n${command} exited with ${exitCode}. The logs' last lines (all of them in ${logDir}):\n`);
  console.error(logTails(logDir));
}
process.exit(exitCode);
