// The shape of the cases that break the Temporal server itself (4: dev server restarts, 7: cluster node kills): a lock
// contention run (8 contenders in 2 processes) and a 5 x 100-job drain through one frontend, a fault injected a few
// times while both run, then the checks on the raw records: the fence's log and the job attempts.
import type { ExecutionContext } from 'ava';
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { createCoordinator, retryInterceptors } from '../../../lib/index.js';
import { killAll, startWorker, type Child } from './children.js';
import { sleep, until } from './client.js';
import { checkContention, startContention } from './contention.js';
import { checkAttempts, Effects, enqueueEffects, setupEffects } from './effects.js';
import { checkLog, Fence, setupFence } from './fence.js';

const KEYS = 5;
const JOBS_PER_KEY = 100;
/**
 * How long after a fault is over the server may still lose an attempt's completion: a restarted server or a returning
 * node takes seconds to load or move back its shards.
 */
const OUTAGE_TAIL = 10_000;

export interface ServerFaultOptions {
  /** Names the task queue, the resource and the keys. */
  readonly name: string;
  /** The frontend that clients and the worker talk to, and the namespace. */
  readonly address: string;
  readonly namespace: string;
  readonly rounds: number;
  /** Injects the fault of round `round` (from 1). The lock must come back while the fault lasts or once it is over. */
  readonly inject: (round: number) => Promise<void>;
  /** Ends the fault of round `round` once the lock is back, when `inject` does not end it itself. */
  readonly recover?: (round: number) => Promise<void>;
  /** What the rounds are, for the log: `restarts`, `kills of node2`. */
  readonly roundsLabel: string;
  /** How to read the outage figures, for the log. */
  readonly outageNote: string;
}

/** Runs the contention and the drain through `rounds` faults and checks that nothing overlapped or got lost. */
export async function runServerFaults(t: ExecutionContext, options: ServerFaultOptions): Promise<void> {
  await setupFence();
  await setupEffects();
  const fence = Fence.open();
  const effects = Effects.open();
  const env = { TEMPORAL_ADDRESS: options.address, TEMPORAL_NAMESPACE: options.namespace };
  const connection = await Connection.connect({ address: options.address, interceptors: retryInterceptors() });
  const children: Child[] = [];
  t.teardown(async () => {
    await killAll(children);
    await connection.close();
    await effects.close();
    await fence.close();
  });

  const taskQueue = `faults-${options.name}-${randomUUID().slice(0, 8)}`;
  const resource = `${options.name}-${randomUUID()}`;
  const run = randomUUID();
  const started = performance.now();
  const worker = await startWorker(children, 'worker', { ...env, TASK_QUEUE: taskQueue, JOB_MS: 200 });
  const contention = startContention(children, { taskQueue, resource, processes: 2, perProcess: 4, env });
  const client = new Client({ connection, namespace: options.namespace });
  const { enqueue } = createCoordinator({ client, taskQueue });
  const keys = Array.from({ length: KEYS }, (_, k) => `${options.name}-${run}-${k}`);
  await enqueueEffects(enqueue, run, keys, JOBS_PER_KEY);

  const sections = async () => checkLog(await fence.log(resource)).sections;
  const finished = () => effects.finishedJobs(run);
  await until(async () => (await sections()) >= 20, 120_000, 'the first 20 sections');
  const outages: number[] = [];
  const spans: { from: number; to: number }[] = [];
  let midDrain = 0;
  for (let round = 1; round <= options.rounds; round++) {
    await sleep(1_000 + Math.random() * 2_000);
    if ((await finished()) < KEYS * JOBS_PER_KEY) midDrain++;
    const sectionsBefore = await sections();
    const injectedAt = performance.now();
    const from = Date.now();
    await options.inject(round);
    // The lock is back when a new section enters after the fault.
    await until(async () => (await sections()) > sectionsBefore, 120_000, `a section after fault ${round}`);
    outages.push(performance.now() - injectedAt);
    await options.recover?.(round);
    spans.push({ from, to: Date.now() + OUTAGE_TAIL });
  }
  await until(async () => (await finished()) >= KEYS * JOBS_PER_KEY, 300_000, 'every job finished');
  const stats = await contention.stop();
  await worker.kill('SIGTERM');
  const ended = new Map([[worker.name, { at: Date.now(), killed: false }]]);

  const verdict = checkLog(await fence.log(resource));
  t.log(
    `${options.rounds} ${options.roundsLabel} (${midDrain} mid-drain), ${verdict.sections} critical sections and ` +
      `${KEYS * JOBS_PER_KEY} jobs in ${((performance.now() - started) / 1000).toFixed(0)} s; lock back ` +
      `${outages.map((ms) => (ms / 1000).toFixed(1)).join(', ')} s after each (${options.outageNote})`,
  );
  t.is(midDrain, options.rounds, 'every fault landed while jobs were draining');
  checkContention(t, verdict, stats, 8);
  const summary = checkAttempts(t, await effects.attempts(run), await effects.applied(run), keys, JOBS_PER_KEY, {
    ended,
    outages: spans,
  });
  const { outage, timeout } = summary.excuses;
  t.log(
    `${verdict.overlaps.length} overlaps, ${verdict.rejected.length} rejected writes; ${summary.attempts} job ` +
      `attempts, ${summary.reruns} re-runs (${outage} around a fault, ${timeout} after an attempt overran its ` +
      `timeout; ${summary.alreadyApplied} found the effect applied)`,
  );
}
