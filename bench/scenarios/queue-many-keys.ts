/**
 * `queue-many-keys`: 100 keys x 100 no-op jobs (quick: 10 x 20), enqueued into the paused keys, then resumed
 * together: aggregate jobs per second, with every key's order and every job's single run checked; then the same with
 * local jobs (`{ local: true }`).
 * @module
 */
import { defineScenario } from '../scenario.js';
import { runQueue } from './_queue.js';

/** Keys enqueued to at once (each key's jobs one after the other, so their order is defined). */
const ENQUEUE_CONCURRENCY = 32;

export default defineScenario({
  name: 'queue-many-keys',
  description:
    '100 keys x 100 no-op jobs (quick: 10 x 20), normal then local: aggregate jobs/s once resumed, zero order ' +
    'violations and zero losses checked.',
  async run(ctx) {
    const keys = ctx.quick ? 10 : 100;
    const jobsPerKey = ctx.quick ? 20 : 100;
    for (const local of [false, true]) {
      const { log, outcome } = await runQueue(ctx, {
        name: local ? 'many-keys-local' : 'many-keys',
        keys,
        jobsPerKey,
        concurrency: ENQUEUE_CONCURRENCY,
        job: local ? { local: true } : {},
      });
      const { enqueueLatencies, enqueueElapsed, processElapsed } = outcome.value;
      if (!local) {
        ctx.record({
          metric: `enqueue, ${keys} keys`,
          samples: enqueueLatencies,
          elapsed: enqueueElapsed,
          note: `${keys * jobsPerKey} enqueues into paused keys, ${Math.min(ENQUEUE_CONCURRENCY, keys)} keys at once, each key's in sequence`,
          compare: { kind: 'enqueue', resources: keys },
        });
      }
      ctx.record({
        metric: `aggregate, ${keys} keys x ${jobsPerKey} ${local ? 'local ' : ''}jobs`,
        samples: log.intervals(),
        elapsed: processElapsed,
        operations: keys * jobsPerKey,
        note:
          (local ? 'enqueued with { local: true }; ' : '') +
          'latencies: start-to-start interval of consecutive jobs of one key, pooled; throughput: every job over ' +
          'resume -> last job end; 0 order violations and 0 losses (checked)',
        compare: { kind: 'job', resources: keys },
        cost: outcome.cost,
      });
    }
  },
});
