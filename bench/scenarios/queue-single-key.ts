/**
 * `queue-single-key`: one queue key, no-op jobs. Enqueue latency (into the paused key), then jobs per second and the
 * per-job overhead (start to start) once the key is resumed with all its jobs waiting; every job checked to run once,
 * in order. Beside it, the queue's floor measured the same way: no-op activities run one after the other by a trivial
 * workflow (one activity round trip each).
 * @module
 */
import { fileURLToPath } from 'node:url';
import { CostMeter, historyEventsPerOp } from '../cost.js';
import { abortable } from '../sample.js';
import { defineScenario, type ScenarioContext } from '../scenario.js';
import { bundleWorkflows, connectClient, startWorker } from '../temporal.js';
import { activityLoop, type ActivityLoopActivities } from '../workflows/activity-loop.js';
import { runQueue, type QueueRunOptions } from './_queue.js';

const workflowsPath = fileURLToPath(new URL('../workflows/activity-loop.ts', import.meta.url));
/** Activities per loop workflow: well under the history-length suggestion of 4,096 events. */
const ACTIVITIES_PER_WORKFLOW = 400;

/** The ways one key's jobs are measured: the metric's suffix, the jobs' options and the worker's settings. */
const variants: readonly {
  label: string;
  note: string;
  options: QueueRunOptions['job'] & object;
  worker?: QueueRunOptions['worker'];
}[] = [
  {
    label: '',
    note: 'the worker as createWorker makes it: it asks for eager activities, which the server grants only with system.enableActivityEagerExecution',
    options: {},
  },
  {
    label: ', worker without eager',
    note: 'maxEagerActivityReservationsPerWorkflowTask: 0, so the activity always goes through matching (what a server without eager execution does)',
    options: {},
    worker: { maxEagerActivityReservationsPerWorkflowTask: 0 },
  },
  {
    label: ', local',
    note: 'enqueued with { local: true }: each job a local activity of the key workflow',
    options: { local: true },
  },
];

export default defineScenario({
  name: 'queue-single-key',
  description:
    'One key, 1,000 no-op jobs (quick: 100): enqueue latency, jobs/s and per-job overhead, order and loss checked; ' +
    'normal jobs (eager if the server allows it), normal jobs on a worker without eager, and local jobs; beside ' +
    'them the floor of one activity round trip in a workflow loop.',
  async run(ctx) {
    await activityRoundTrip(ctx);
    const jobs = ctx.quick ? 100 : 1000;
    for (const [index, variant] of variants.entries()) {
      const { log, outcome } = await runQueue(ctx, {
        name: `single-key${index}`,
        keys: 1,
        jobsPerKey: jobs,
        concurrency: 1,
        job: variant.options,
        ...(variant.worker ? { worker: variant.worker } : {}),
      });
      const { enqueueLatencies, enqueueElapsed, processElapsed } = outcome.value;
      if (index === 0) {
        ctx.record({
          metric: 'enqueue, 1 key',
          samples: enqueueLatencies,
          elapsed: enqueueElapsed,
          note: `${jobs} enqueues one after the other into the paused key (signal-with-start each)`,
          compare: { kind: 'enqueue' },
        });
      }
      ctx.record({
        metric: `job, 1 key x ${jobs} no-op jobs${variant.label}`,
        samples: log.intervals(),
        elapsed: processElapsed,
        operations: jobs,
        note:
          `${variant.note}; start-to-start interval of consecutive jobs once the key is resumed with all its jobs ` +
          'waiting (the per-job overhead); throughput over resume -> last job end; history events include the ' +
          'enqueue signals',
        compare: { kind: 'job' },
        cost: outcome.cost,
      });
    }
  },
});

/** The floor under a queue job: start-to-start intervals of no-op activities that a workflow runs in sequence. */
async function activityRoundTrip(ctx: ScenarioContext): Promise<void> {
  const taskQueue = `${ctx.taskQueue}-activity-loop`;
  const workflowBundle = await bundleWorkflows(ctx, workflowsPath);
  const starts: number[] = [];
  const activities: ActivityLoopActivities = {
    async noop() {
      starts.push(performance.now());
      ctx.progress.update(`activity loop: ${starts.length}/${ctx.warmup + ctx.samples}`);
    },
  };
  const worker = await startWorker(ctx, { taskQueue, workflowBundle, activities });
  const { client, close } = await connectClient(ctx);
  try {
    const meter = await CostMeter.start(ctx);
    const total = ctx.warmup + ctx.samples;
    for (let done = 0, part = 0; done < total; part++) {
      const count = Math.min(ACTIVITIES_PER_WORKFLOW, total - done);
      await abortable(
        Promise.race([
          client.workflow.execute(activityLoop, { workflowId: `${taskQueue}/${part}`, taskQueue, args: [count] }),
          worker.crashed,
        ]),
        ctx.signal,
      );
      done += count;
    }
    const usage = await meter.stop();
    const history = await historyEventsPerOp(ctx, client, taskQueue, total);
    // Intervals within one workflow only: the first activity of the next workflow also waits for its start.
    const intervals: number[] = [];
    for (let index = 1; index < starts.length; index++) {
      if (index % ACTIVITIES_PER_WORKFLOW !== 0) intervals.push(starts[index]! - starts[index - 1]!);
    }
    ctx.record({
      metric: 'activity round trip (floor)',
      samples: intervals.slice(ctx.warmup),
      note: 'start-to-start interval of no-op activities run in sequence by a trivial workflow',
      compare: { kind: 'activity-floor' },
      cost: { operations: total, ...usage, ...(history === undefined ? {} : { historyEventsPerOp: history.perOp }) },
    });
  } finally {
    await close();
    await worker.stop();
  }
}
