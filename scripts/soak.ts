// npm run soak -- [--hand-offs N] [--contenders N]: hand the lock on one resource from contender to contender N times
// (default 100,000) on a dev server of its own (or TEMPORAL_ADDRESS), across many continue-as-new runs, and sample the
// memory of the worker hosting the lock workflow, which runs in a child process of its own. Prints one line per sample
// and a summary: hand-offs per second, workflow runs, worker RSS at the start (after warm-up), at the end and at most.
// Exits 1 if a check failed (overlap, tokens out of order, a grant lost).
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { DEFAULT_ID_PREFIX } from '../lib/context.js';
import { lockIdPrefix } from '../lib/ids.js';
import { createCoordinator } from '../lib/index.js';
import { startDevServer } from '../lib/testing/index.js';

const { values } = parseArgs({
  options: { 'hand-offs': { type: 'string', default: '100000' }, contenders: { type: 'string', default: '4' } },
});
const handOffs = Number(values['hand-offs']);
const contenders = Number(values.contenders);
if (!Number.isSafeInteger(handOffs) || handOffs < 1) throw new RangeError('--hand-offs must be a positive integer');
if (!Number.isSafeInteger(contenders) || contenders < 1)
  throw new RangeError('--contenders must be a positive integer');
const SAMPLE_EVERY = 10_000;
/** RSS before this share of the hand-offs is warm-up (bundle loaded, caches filled), not growth. */
const WARMUP_SHARE = 0.05;

const server = await startDevServer();
const taskQueue = `soak-${process.pid}`;
const worker = spawn(process.execPath, ['--import', 'tsx', new URL('./soak-worker.ts', import.meta.url).pathname], {
  env: {
    ...process.env,
    TEMPORAL_ADDRESS: server.address,
    TEMPORAL_NAMESPACE: server.namespace,
    TASK_QUEUE: taskQueue,
  },
  stdio: ['ignore', 'pipe', 'inherit'],
});
await new Promise<void>((resolve, reject) => {
  worker.once('exit', (code) => reject(new Error(`the soak worker exited with ${code} before it was ready`)));
  worker.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes('ready') && resolve());
});
const rssMiB = () => {
  const status = readFileSync(`/proc/${worker.pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
};

const connection = await Connection.connect({ address: server.address });
const client = new Client({ connection, namespace: server.namespace });
const resource = `soak-${Date.now()}`;
let granted = 0;
let inside = 0;
let lastToken = 0;
const violations: string[] = [];
const samples: { handOffs: number; seconds: number; rssMiB: number }[] = [];
const started = performance.now();
let warmRss: number | undefined;

const sample = () => {
  const point = { handOffs: granted, seconds: (performance.now() - started) / 1000, rssMiB: rssMiB() };
  samples.push(point);
  if (warmRss === undefined && granted >= handOffs * WARMUP_SHARE) warmRss = point.rssMiB;
  console.log(
    `${point.handOffs} hand-offs in ${point.seconds.toFixed(0)} s (${(point.handOffs / point.seconds).toFixed(1)}/s), ` +
      `worker RSS ${point.rssMiB.toFixed(0)} MiB`,
  );
};
const sampler = setInterval(sample, SAMPLE_EVERY);

await Promise.all(
  Array.from({ length: contenders }, async () => {
    const { withLock } = createCoordinator({ client, taskQueue });
    while (granted < handOffs) {
      await withLock(resource, async (lease) => {
        if (++inside > 1) violations.push(`overlap at token ${lease.token}`);
        if (lease.token <= lastToken) violations.push(`token ${lease.token} after ${lastToken}`);
        lastToken = lease.token;
        granted++;
        // Held across a timer, so a second holder granted meanwhile would be counted.
        await new Promise((resolve) => setTimeout(resolve, 1));
        inside--;
      });
    }
  }),
);
clearInterval(sampler);
sample();

let runs = 0;
for await (const _ of client.workflow.list({ query: `WorkflowId = '${lockIdPrefix(DEFAULT_ID_PREFIX) + resource}'` })) {
  runs++;
}
const end = samples.at(-1)!;
const peak = Math.max(...samples.map((point) => point.rssMiB));
const growth = end.rssMiB - (warmRss ?? samples[0]!.rssMiB);
console.log(
  `\n${granted} hand-offs, ${contenders} contenders, ${end.seconds.toFixed(0)} s (${(granted / end.seconds).toFixed(1)}/s), ` +
    `${runs} workflow runs; worker RSS after warm-up ${(warmRss ?? samples[0]!.rssMiB).toFixed(0)} MiB, ` +
    `at the end ${end.rssMiB.toFixed(0)} MiB (growth ${growth.toFixed(0)} MiB), peak ${peak.toFixed(0)} MiB; ` +
    `${violations.length} violations`,
);
for (const violation of violations.slice(0, 10)) console.log(`  ${violation}`);

worker.kill('SIGTERM');
await new Promise((resolve) => worker.once('exit', resolve));
await connection.close();
await server.stop();
process.exit(violations.length === 0 ? 0 : 1);
