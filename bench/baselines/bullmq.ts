/**
 * Baseline: BullMQ on Redis. Per-key order in BullMQ comes from its "groups", a feature of the commercial BullMQ Pro
 * (not on the public npm registry); open-source BullMQ keeps a key's jobs in order with one queue per key, worked by
 * one worker of concurrency 1. That is what {@link BullmqKeys} sets up: a queue and a worker per key, each worker on
 * connections of its own, all in this process.
 * @module
 */
import { Queue, Worker, type ConnectionOptions } from 'bullmq';
import { redisUrl } from './redis-lock.js';

/** How BullMQ connects to the baseline's Redis (`BENCH_REDIS_URL`, default the local server). */
export function bullmqConnection(): ConnectionOptions {
  const url = new URL(redisUrl);
  return {
    host: url.hostname,
    port: Number(url.port || 6379),
    ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
    // Workers block on Redis and must not give up on a slow reply (BullMQ requires it).
    maxRetriesPerRequest: null,
  };
}

/** One BullMQ queue and one concurrency-1 worker per key, under a prefix of this run's own. */
export class BullmqKeys {
  private constructor(
    readonly queues: readonly Queue[],
    private readonly workers: readonly Worker[],
  ) {}

  /**
   * Creates the queues and workers of `keys` with the workers not yet running, so jobs pile up until {@link run};
   * `processor(key, data)` runs each job.
   */
  static create(
    prefix: string,
    keys: readonly string[],
    processor: (key: string, data: unknown) => unknown,
    concurrency = 1,
  ): BullmqKeys {
    const connection = bullmqConnection();
    const queues = keys.map((key) => new Queue(key, { connection, prefix }));
    const workers = keys.map((key) => {
      const worker = new Worker(key, async (job) => processor(key, job.data), {
        connection,
        prefix,
        concurrency,
        autorun: false,
      });
      // A failed job or lost connection shows as missing or misordered jobs in the scenario's checks.
      worker.on('error', () => {});
      return worker;
    });
    return new BullmqKeys(queues, workers);
  }

  /** Starts every worker. */
  run(): void {
    for (const worker of this.workers) worker.run().catch(() => {});
  }

  /** Stops the workers, deletes the queues' data and closes every connection. */
  async close(): Promise<void> {
    await Promise.allSettled(this.workers.map((worker) => worker.close()));
    await Promise.allSettled(this.queues.map((queue) => queue.obliterate({ force: true })));
    await Promise.allSettled(this.queues.map((queue) => queue.close()));
  }
}
