/**
 * `bullmq` (baseline): the queue scenarios' jobs on BullMQ (open source) with Redis. Per-key order as open-source
 * BullMQ gives it: one queue per key with one concurrency-1 worker each (BullMQ's own per-key "groups" are BullMQ Pro
 * only). One key x 1,000 no-op jobs, 100 keys x 100 (quick: 100, and 10 x 20), enqueued with the workers stopped,
 * then run: the same measurements and the same order and loss checks as `queue-single-key` and `queue-many-keys`.
 * Beside them, plain BullMQ's throughput with no per-key order: one queue, one worker of concurrency 100 (quick: 10).
 * Skipped where Redis is unreachable.
 * @module
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { BullmqKeys } from '../baselines/bullmq.js';
import { connectRedis, redisUrl } from '../baselines/redis-lock.js';
import { forEachLimited } from '../cost.js';
import { defineScenario, ScenarioSkipped, type ScenarioContext } from '../scenario.js';
import { CorrectnessError } from './_critical-section.js';
import { JobLog } from './_queue.js';

/** A run that completes no job for this long, with jobs still missing, has lost them. */
const STALL_TIMEOUT = 60_000;
/** Keys enqueued to at once, as in `queue-many-keys`. */
const ENQUEUE_CONCURRENCY = 32;

interface Level {
  readonly name: string;
  readonly keys: number;
  readonly jobsPerKey: number;
  /** One queue for every key, worked `keys` at once: no per-key order, so only losses are checked. */
  readonly shared: boolean;
}

export default defineScenario({
  name: 'bullmq',
  description:
    'Baseline: BullMQ, one queue + one concurrency-1 worker per key (per-key order in open-source BullMQ), 1 key x ' +
    '1,000 and 100 keys x 100 no-op jobs, order and losses checked; plain BullMQ (one queue, concurrency 100) ' +
    'beside them (skipped if Redis is unreachable).',
  async run(ctx) {
    try {
      const redis = await connectRedis();
      await redis.quit();
    } catch (error) {
      throw new ScenarioSkipped(`Redis at ${redisUrl} is unreachable: ${String(error)}`);
    }
    const [keys, jobsPerKey, single] = ctx.quick ? [10, 20, 100] : [100, 100, 1000];
    const levels: Level[] = [
      { name: 'single-key', keys: 1, jobsPerKey: single, shared: false },
      { name: 'many-keys', keys, jobsPerKey, shared: false },
      { name: 'shared', keys, jobsPerKey, shared: true },
    ];
    for (const level of levels) await runLevel(ctx, level);
  },
});

async function runLevel(ctx: ScenarioContext, level: Level): Promise<void> {
  const log = new JobLog();
  const total = level.keys * level.jobsPerKey;
  const keys = Array.from({ length: level.keys }, (_, index) => `key-${index}`);
  const prefix = `bench-bullmq-${randomUUID().slice(0, 8)}`;
  const processor = (_: string, data: unknown) => {
    const { key, seq } = data as { key: string; seq: number };
    return log.jobs.noop(key, seq);
  };
  const bull = level.shared
    ? BullmqKeys.create(prefix, ['shared'], processor, level.keys)
    : BullmqKeys.create(prefix, keys, processor);
  try {
    const queueOf = (index: number) => bull.queues[level.shared ? 0 : index]!;
    const enqueueLatencies: number[] = [];
    const enqueueStart = performance.now();
    await forEachLimited(
      keys.map((key, index) => ({ key, index })),
      ENQUEUE_CONCURRENCY,
      async ({ key, index }) => {
        for (let seq = 0; seq < level.jobsPerKey; seq++) {
          ctx.signal.throwIfAborted();
          const start = performance.now();
          await queueOf(index).add('noop', { key, seq }, { jobId: `${key}-job-${seq}` });
          enqueueLatencies.push(performance.now() - start);
          ctx.progress.update(`bullmq ${level.name}: enqueued ${enqueueLatencies.length}/${total}`);
        }
      },
    );
    const enqueueElapsed = performance.now() - enqueueStart;
    const resumedAt = performance.now();
    bull.run();
    await waitForAll(ctx, level, log, total);
    const processElapsed = log.lastEnd() - resumedAt;
    if (level.shared) {
      if (log.total !== total) throw new CorrectnessError(`bullmq ${level.name}: ${log.total} of ${total} jobs ran`);
    } else {
      log.assertCorrect(`bullmq ${level.name}`, keys, level.jobsPerKey);
    }
    record(ctx, level, { log, enqueueLatencies, enqueueElapsed, processElapsed });
  } finally {
    ctx.progress.update(`bullmq ${level.name}: closing`);
    await bull.close();
  }
}

async function waitForAll(ctx: ScenarioContext, level: Level, log: JobLog, total: number): Promise<void> {
  let seen = log.total;
  let progressAt = performance.now();
  while (log.total < total) {
    ctx.signal.throwIfAborted();
    await delay(20);
    ctx.progress.update(`bullmq ${level.name}: ${log.total}/${total} jobs ran`);
    if (log.total !== seen) {
      seen = log.total;
      progressAt = performance.now();
    } else if (performance.now() - progressAt > STALL_TIMEOUT) {
      throw new CorrectnessError(`bullmq ${level.name}: ${total - log.total} jobs never ran`);
    }
  }
}

function record(
  ctx: ScenarioContext,
  level: Level,
  run: { log: JobLog; enqueueLatencies: number[]; enqueueElapsed: number; processElapsed: number },
): void {
  const { keys, jobsPerKey } = level;
  const what = level.shared
    ? `plain, 1 queue, concurrency ${keys}, ${keys * jobsPerKey} jobs`
    : keys === 1
      ? `job, 1 key x ${jobsPerKey} no-op jobs`
      : `aggregate, ${keys} keys x ${jobsPerKey} jobs`;
  if (!level.shared) {
    ctx.record({
      metric: `enqueue, ${keys} ${keys === 1 ? 'key' : 'keys'}`,
      samples: run.enqueueLatencies,
      elapsed: run.enqueueElapsed,
      note: `Queue.add into stopped workers' queues, ${Math.min(ENQUEUE_CONCURRENCY, keys)} keys at once`,
    });
  }
  ctx.record({
    metric: what,
    samples: level.shared ? [] : run.log.intervals(),
    elapsed: run.processElapsed,
    operations: keys * jobsPerKey,
    note: level.shared
      ? 'one queue worked by one worker of that concurrency: no per-key order (losses checked only)'
      : 'one queue and one concurrency-1 worker per key; start-to-start interval of consecutive jobs of a key; ' +
        'throughput over workers started -> last job end; order and losses checked',
    compare: { kind: 'job', resources: keys },
  });
}
