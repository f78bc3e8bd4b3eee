// A worker hosting the coordination workflows in a child process, so a fault case can SIGKILL it. Prints `ready` once
// it polls. Hosts one job, `applyEffect`, for the queue cases: it records the attempt's start, works for JOB_MS,
// applies the job's effect at most once, then records the attempt's end (effects.ts).
// Usage: node --import tsx worker.ts (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TASK_QUEUE, JOB_MS, WORKER).
import { Context } from '@temporalio/activity';
import { runChildWorker } from '../../_helpers/worker-child.js';
import { Effects, type Effect } from './effects.js';

const jobMs = Number(process.env['JOB_MS'] ?? 200);
/** How the test names this process, so it can tell which attempts ran in a worker it killed. */
const worker = process.env['WORKER'] ?? `pid ${process.pid}`;
let effects: Effects | undefined;

await runChildWorker({
  async applyEffect(run: string, effect: Effect) {
    effects ??= Effects.open();
    const attempt = await effects.start(run, effect, Context.current().info, worker);
    await new Promise((resolve) => setTimeout(resolve, jobMs));
    await effects.finish(attempt, await effects.apply(run, effect));
  },
});
await effects?.close();
