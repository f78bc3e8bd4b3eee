/**
 * `sample-mutex` (baseline): the Temporal TypeScript samples' mutex pattern (see `bench/workflows/sample-mutex.ts`)
 * on the same server, 8 and 32 requester workflows taking the lock in turn with an empty critical section. The
 * critical section runs in the requester's workflow code, so it is timed where that code runs: the worker in this
 * process, through a sink called right after the activation that ran it (before its commands, the release signal
 * among them, go to the server). Hand-off latency and throughput are then paired exactly as in `lock-contention`.
 * @module
 */
import { fileURLToPath } from 'node:url';
import { Context } from '@temporalio/activity';
import type { InjectedSinks, WorkflowBundle } from '@temporalio/worker';
import { historyEventsPerOp, CostMeter } from '../cost.js';
import { abortable } from '../sample.js';
import { defineScenario, type ScenarioContext } from '../scenario.js';
import { bundleWorkflows, connectClient, startWorker, type BenchClient } from '../temporal.js';
import {
  lockRequestSignal,
  mutexLockWorkflow,
  mutexRequester,
  type MutexActivities,
  type MutexSinks,
} from '../workflows/sample-mutex.js';
import { CriticalSections, type Entry } from './_critical-section.js';
import { plural } from './_lib.js';

const workflowsPath = fileURLToPath(new URL('../workflows/sample-mutex.ts', import.meta.url));
/** The lock is taken back from a holder that has not released after this long (never, in a healthy run). */
const LOCK_TIMEOUT = 30_000;

export default defineScenario({
  name: 'sample-mutex',
  description:
    'Baseline: the Temporal TypeScript mutex sample pattern (lock workflow signals each requester workflow a ' +
    'per-grant release-signal name), 8 and 32 requester workflows, empty critical section, same server.',
  async run(ctx) {
    const workflowBundle = await bundleWorkflows(ctx, workflowsPath);
    const client = await connectClient(ctx);
    try {
      for (const contenders of [8, 32]) await measureLevel(ctx, client, workflowBundle, contenders);
    } finally {
      await client.close();
    }
  },
});

async function measureLevel(
  ctx: ScenarioContext,
  { client }: BenchClient,
  workflowBundle: WorkflowBundle,
  contenders: number,
): Promise<void> {
  const taskQueue = `${ctx.taskQueue}-c${contenders}`;
  const lockWorkflowId = `${taskQueue}/lock`;
  const rounds = Math.ceil((ctx.warmup + ctx.samples) / contenders);
  const grants = rounds * contenders;
  const label = plural(contenders, 'contender');
  const monitor = new CriticalSections(`sample-mutex, ${label}`);
  const inside = new Map<number, Entry>();
  const activities: MutexActivities = {
    async requestLock(lockId, timeoutMs) {
      const requesterId = Context.current().info.workflowExecution?.workflowId;
      if (requesterId === undefined) throw new Error('requestLock runs only as a workflow activity');
      await client.workflow.signalWithStart(mutexLockWorkflow, {
        workflowId: lockId,
        taskQueue,
        args: [{ requests: [], nextToken: 1 }],
        signal: lockRequestSignal,
        signalArgs: [{ requesterId, timeoutMs }],
      });
    },
  };
  const sinks: InjectedSinks<MutexSinks> = {
    criticalSection: {
      enter: {
        fn: (_info, token) => {
          inside.set(token, monitor.enter(token));
          ctx.progress.update(`${label}: ${monitor.count}/${grants} grants`);
        },
        callDuringReplay: false,
      },
      exit: {
        fn: (_info, token) => {
          const entry = inside.get(token);
          if (entry === undefined) throw new Error(`Token ${token} released without entering`);
          inside.delete(token);
          monitor.exit(entry);
        },
        callDuringReplay: false,
      },
    },
  };
  ctx.progress.update(`${label}: starting a worker`);
  const worker = await startWorker(ctx, { taskQueue, workflowBundle, activities, sinks });
  try {
    const meter = await CostMeter.start(ctx);
    const requesters = Array.from({ length: contenders }, (_, index) =>
      client.workflow.start(mutexRequester, {
        workflowId: `${taskQueue}/requester-${index}`,
        taskQueue,
        args: [{ lockWorkflowId, rounds, timeoutMs: LOCK_TIMEOUT }],
      }),
    );
    await abortable(
      Promise.race([Promise.all(requesters.map(async (started) => (await started).result())), worker.crashed]),
      ctx.signal,
    );
    const usage = await meter.stop();
    // The lock workflow never ends by itself (like the sample's): end it, so its history can be counted.
    await client.workflow.getHandle(lockWorkflowId).terminate('bench done');
    const history = await historyEventsPerOp(ctx, client, taskQueue, monitor.count);
    ctx.record(
      monitor.handOffRow(ctx.warmup, grants, {
        metric: `hand-off, ${label}`,
        note:
          `${contenders} requester workflows x ${rounds} rounds (first ${ctx.warmup} grants not measured); ` +
          'critical section timed by a sink in the worker; history events counted over the lock and requester workflows',
        compare: { kind: 'hand-off', contenders },
        cost: {
          operations: monitor.count,
          ...usage,
          ...(history === undefined ? {} : { historyEventsPerOp: history.perOp }),
        },
      }),
    );
  } finally {
    await client.workflow
      .getHandle(lockWorkflowId)
      .terminate('bench done')
      .catch(() => {}); // Already terminated above, or never started.
    await worker.stop();
  }
}
