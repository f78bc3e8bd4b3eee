// A worker hosting the coordination workflows in a child process, so a fault case can SIGKILL it. Prints `ready` once
// it polls. Hosts one job, `applyEffect`, for the queue case: it logs the attempt, works for JOB_MS, then applies the
// job's effect at most once (effects.ts).
// Usage: node --import tsx worker.ts (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TASK_QUEUE, JOB_MS).
import { Context } from '@temporalio/activity';
import { runChildWorker } from '../../_helpers/worker-child.js';
import { Effects, type Effect } from './effects.js';

const jobMs = Number(process.env['JOB_MS'] ?? 200);
let effects: Effects | undefined;

await runChildWorker({
  async applyEffect(run: string, effect: Effect) {
    effects ??= Effects.open();
    await effects.attempt(run, effect.jobId, Context.current().info.attempt);
    await new Promise((resolve) => setTimeout(resolve, jobMs));
    await effects.apply(run, effect);
  },
});
await effects?.close();
