/**
 * `floor`: the cheapest Temporal hand-offs, with trivial workflows and no library code. Every lock and queue number
 * is read against these: a lock hand-off cannot beat `signal->open-update` (nor, under contention, its back-to-back
 * rate), an acquire cannot beat `signal-with-start` or `update-roundtrip`.
 * @module
 */
import { fileURLToPath } from 'node:url';
import { setTimeout as delay } from 'node:timers/promises';
import { WorkflowUpdateStage, type Client, type WorkflowHandle } from '@temporalio/client';
import { abortable, sampleSequentially } from '../sample.js';
import { defineScenario, type ScenarioContext } from '../scenario.js';
import { bundleWorkflows, cancelOnInterrupt, connectClient, startWorker } from '../temporal.js';
import {
  flagSignal,
  floorHandOff,
  floorSignalWithStart,
  pingUpdate,
  pingsQuery,
  stopSignal,
  waitForFlagUpdate,
  wakeSignal,
} from '../workflows/floor.js';

const workflowsPath = fileURLToPath(new URL('../workflows/floor.ts', import.meta.url));

/** Updates sent to one long-lived workflow, well under the server's 2,000 updates per run. */
const updatesPerWorkflow = 500;

export default defineScenario({
  name: 'floor',
  description:
    'Trivial workflows: a signal releasing an open update (spaced out, and back to back), a bare update round trip, ' +
    'a query, a describe, signal-with-start. The floor under every lock and queue number.',
  async run(ctx) {
    const workflowBundle = await bundleWorkflows(ctx, workflowsPath);
    const worker = await startWorker(ctx, { workflowBundle });
    // Two clients on two connections, as two processes would be: A waits, B releases.
    const a = await connectClient(ctx);
    const b = await connectClient(ctx);
    const longLived: WorkflowHandle[] = [];
    try {
      const measure = cancelOnInterrupt(ctx, [a, b], async () => {
        await signalToOpenUpdate(ctx, a.client, b.client, longLived, {
          metric: 'signal->open-update',
          gap: [25, 75],
          note: 'random idle gap of 25-75 ms before each signal (untimed): light load',
        });
        await signalToOpenUpdate(ctx, a.client, b.client, longLived, {
          metric: 'signal->open-update back-to-back',
          gap: [1, 1],
          note: 'next hand-off at once: capped by the transfer queue reader (history.transferProcessorMaxPollRPS)',
          cost: true,
        });
        await roundTrips(ctx, a.client, longLived);
        await signalWithStart(ctx, a.client);
      });
      await Promise.race([measure, worker.crashed]);
    } finally {
      // After Ctrl-C the server may be going away too (the terminal signals it as well): leave the workflows be.
      if (!ctx.signal.aborted) {
        ctx.progress.update('stopping workflows');
        await Promise.allSettled(longLived.map((handle) => handle.signal(stopSignal).then(() => handle.result())));
      }
      await Promise.allSettled([a.close(), b.close()]);
      await worker.stop();
    }
  },
});

/** Starts enough long-lived workflows for `warmup + samples` updates; their first workflow task runs meanwhile. */
async function startLongLived(
  ctx: ScenarioContext,
  client: Client,
  label: string,
  started: WorkflowHandle[],
): Promise<WorkflowHandle[]> {
  const count = Math.ceil((ctx.warmup + ctx.samples) / updatesPerWorkflow);
  const handles: WorkflowHandle[] = [];
  for (let index = 0; index < count; index++) {
    const handle = await client.workflow.start(floorHandOff, {
      workflowId: `${ctx.taskQueue}-${label}-${index}`,
      taskQueue: ctx.taskQueue,
    });
    started.push(handle);
    handles.push(handle);
  }
  return handles;
}

function pick<T>(items: readonly T[], iteration: number): T {
  const item = items[Math.floor(iteration / updatesPerWorkflow)];
  if (item === undefined) throw new RangeError(`No workflow for iteration ${iteration}`);
  return item;
}

/**
 * A's update is accepted and blocked in `condition(() => flags >= n)`, its result being polled; the timer runs from
 * B's signal call to A's result.
 *
 * The workflow task that a signal creates reaches the worker through the history shard's transfer queue, whose reader
 * polls at most `history.transferProcessorMaxPollRPS` times a second (20 by default; the dev server has one shard).
 * Spaced out (`gap` ms, random, untimed, ~14 hand-offs/s) the samples measure latency at light load; back to back
 * they run into that limit, which caps a chain of signal-driven hand-offs (a contended lock) at about 20 per second.
 */
async function signalToOpenUpdate(
  ctx: ScenarioContext,
  a: Client,
  b: Client,
  started: WorkflowHandle[],
  options: {
    readonly metric: string;
    readonly gap: readonly [min: number, max: number];
    readonly note: string;
    readonly cost?: boolean;
  },
): Promise<void> {
  const waiters = await startLongLived(ctx, a, `hand-off-${options.gap[1]}`, started);
  const releasers = waiters.map((handle) => b.workflow.getHandle(handle.workflowId));
  const [minGap, maxGap] = options.gap;
  await sampleSequentially(
    ctx,
    options.metric,
    async (iteration) => {
      const n = (iteration % updatesPerWorkflow) + 1;
      const update = await pick(waiters, iteration).startUpdate(waitForFlagUpdate, {
        args: [n],
        waitForStage: WorkflowUpdateStage.ACCEPTED,
      });
      const result = update.result();
      result.catch(() => {}); // Awaited below; an interrupt may reject it before.
      // Also lets A's poll reach the server before B signals.
      await delay(minGap + Math.random() * (maxGap - minGap));
      const start = performance.now();
      const [, flags] = await Promise.all([pick(releasers, iteration).signal(flagSignal), result]);
      const duration = performance.now() - start;
      if (flags !== n) throw new Error(`Expected the update to return ${n} flags, got ${flags}`);
      return duration;
    },
    { note: options.note, throughput: options.gap[1] <= 1, cost: options.cost },
  );
}

/**
 * One request at a time to existing workflows, timed and costed: a bare update whose handler returns at once, a
 * query (answered by the worker) and a describe (answered by the server alone), the requests a lock waiter makes.
 */
async function roundTrips(ctx: ScenarioContext, client: Client, started: WorkflowHandle[]): Promise<void> {
  const requests: readonly [metric: string, send: (handle: WorkflowHandle) => Promise<unknown>][] = [
    ['update-roundtrip', (handle) => handle.executeUpdate(pingUpdate)],
    ['query', (handle) => handle.query(pingsQuery)],
    ['describe', (handle) => handle.describe()],
  ];
  for (const [metric, send] of requests) {
    const targets = await startLongLived(ctx, client, metric, started);
    await sampleSequentially(
      ctx,
      metric,
      async (iteration) => {
        const start = performance.now();
        await send(pick(targets, iteration));
        return performance.now() - start;
      },
      { cost: true },
    );
  }
}

/** Signal-with-start on a new workflow ID each time; the workflow completes as soon as the signal is delivered. */
async function signalWithStart(ctx: ScenarioContext, client: Client): Promise<void> {
  let last: WorkflowHandle | undefined;
  await sampleSequentially(
    ctx,
    'signal-with-start',
    async (iteration) => {
      const start = performance.now();
      last = await client.workflow.signalWithStart(floorSignalWithStart, {
        workflowId: `${ctx.taskQueue}-signal-with-start-${iteration}`,
        taskQueue: ctx.taskQueue,
        signal: wakeSignal,
      });
      return performance.now() - start;
    },
    { cost: true },
  );
  // The started workflows end by themselves: wait for the last one, so none is left running.
  ctx.progress.update('waiting for the last signal-with-start workflow to complete');
  if (last !== undefined) await abortable(last.result(), ctx.signal);
}
