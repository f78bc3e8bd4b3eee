// Runs one example the way a user would: against the built package (`npm run build` first, if lib/ changed since), on
// the server TEMPORAL_ADDRESS names, else on a dev server started for the run.
// Usage: npm run example -- <name>       (names: the files in examples/, without .ts)
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDevServer } from '../lib/testing/index.js';
import { ensureBuilt } from './ensure-built.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const examples = readdirSync(join(root, 'examples'))
  .filter((file) => file.endsWith('.ts'))
  .map((file) => file.slice(0, -'.ts'.length))
  .sort();

const [name, ...rest] = process.argv.slice(2);
if (!name || rest.length > 0 || !examples.includes(name.replace(/\.ts$/, ''))) {
  console.error(name ? `Unknown example \`${[name, ...rest].join(' ')}\`.` : 'Which example?');
  console.error(`Usage: npm run example -- <name>\nExamples: ${examples.join(', ')}`);
  process.exit(2);
}
const example = join(root, 'examples', `${name.replace(/\.ts$/, '')}.ts`);

// Examples import 'temporal-coordination', which Node resolves to dist/ through package.json's `exports`.
ensureBuilt(console.error);

if (!process.env['TEMPORAL_ADDRESS']) console.error('TEMPORAL_ADDRESS is not set: starting a Temporal dev server...');
const server = await startDevServer();
const child = spawn(process.execPath, [...process.execArgv, example], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, TEMPORAL_ADDRESS: server.address, TEMPORAL_NAMESPACE: server.namespace },
});
// Ctrl-C reaches the example directly (same process group); this process only waits for it to finish.
const ignore = () => {};
process.on('SIGINT', ignore).on('SIGTERM', (signal) => child.kill(signal));
const code: number = await new Promise((resolve) => child.once('close', (exit) => resolve(exit ?? 1)));
await server.stop().catch(() => {}); // Ctrl-C in a terminal reaches the dev server too; it may be gone already
process.exit(code);
