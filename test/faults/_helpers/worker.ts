// A worker hosting the coordination workflows in a child process, so a fault case can SIGKILL it. Prints `ready` once
// it polls. Hosts one job, `applyEffect`, for the queue case: it logs the attempt, works for JOB_MS, then applies the
// job's effect at most once (effects.ts).
// Usage: node --import tsx worker.ts (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TASK_QUEUE, JOB_MS).
import { Context } from '@temporalio/activity';
import { NativeConnection } from '@temporalio/worker';
import { createWorker } from '../../../lib/worker.js';
import { quietRuntime, workflowBundle } from '../../_helpers/temporal.js';
import { Effects, type Effect } from './effects.js';

const { TEMPORAL_ADDRESS: address, TASK_QUEUE: taskQueue } = process.env;
if (!address || !taskQueue) throw new Error('TEMPORAL_ADDRESS and TASK_QUEUE are required');

const jobMs = Number(process.env['JOB_MS'] ?? 200);
let effects: Effects | undefined;

quietRuntime();
const connection = await NativeConnection.connect({ address });
const bundle = workflowBundle();
const worker = await createWorker({
  ...(bundle ? { workflowBundle: bundle } : {}),
  connection,
  namespace: process.env['TEMPORAL_NAMESPACE'] ?? 'default',
  taskQueue,
  // A killed worker cannot hand its cached workflows back: let the server move them to the next worker after 1 s
  // rather than the default 10 s (a workflow task the killed worker had started still waits for its 10 s timeout).
  stickyQueueScheduleToStartTimeout: '1s',
  jobs: {
    async applyEffect(run: string, effect: Effect) {
      effects ??= Effects.open();
      await effects.attempt(run, effect.jobId, Context.current().info.attempt);
      await new Promise((resolve) => setTimeout(resolve, jobMs));
      await effects.apply(run, effect);
    },
  },
});
const running = worker.run();
process.stdout.write('ready\n');
process.once('SIGTERM', () => worker.shutdown());
await running;
await effects?.close();
await connection.close();
