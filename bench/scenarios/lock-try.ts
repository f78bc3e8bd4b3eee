/**
 * `lock-try`: `tryAcquire` of a free resource, one call at a time, timed from the call to the lease (the release is
 * not timed): on a fresh resource ID every time (update-with-start starts the lock workflow) and on one warm resource
 * ID (its workflow running, lingering between calls). Compared with the floor's update round trip.
 * @module
 */
import { sampleSequentially } from '../sample.js';
import { defineScenario, type Row, type ScenarioContext } from '../scenario.js';
import { CriticalSections } from './_critical-section.js';
import { runLevel } from './_lib.js';

export default defineScenario({
  name: 'lock-try',
  description:
    'tryAcquire of a free resource (the lease; the release not timed), sequential, on a fresh resource ID each ' +
    'time (starts the workflow) and on one warm ID (workflow running).',
  async run(ctx) {
    await measure(ctx, 'fresh');
    await measure(ctx, 'warm');
  },
});

async function measure(ctx: ScenarioContext, kind: 'fresh' | 'warm'): Promise<void> {
  const monitor = new CriticalSections(`lock-try, ${kind} ID`);
  const rows: Row[] = [];
  const outcome = await runLevel(
    ctx,
    { name: `try-${kind}`, processes: 1 },
    async (level) => {
      const { coordinator } = level.processOf(0);
      const capture = { ...ctx, record: (row: Row) => void rows.push(row) };
      await sampleSequentially(
        capture,
        `tryAcquire, ${kind} resource ID`,
        async (iteration) => {
          const resourceId = kind === 'warm' ? `${level.taskQueue}/try` : `${level.taskQueue}/try-${iteration}`;
          const start = performance.now();
          const lease = await coordinator.tryAcquire(resourceId);
          const duration = performance.now() - start;
          if (lease === undefined) throw new Error(`tryAcquire of the free resource ${resourceId} was refused`);
          if (kind === 'warm') await monitor.hold(lease.token);
          await lease.release();
          return duration;
        },
        {
          note:
            kind === 'warm'
              ? 'the same resource ID each time: its workflow is running (it lingers 2 s after a release)'
              : 'a new resource ID each time: update-with-start starts its workflow',
        },
      );
    },
    () => ctx.warmup + ctx.samples,
  );
  monitor.analyse(0);
  monitor.assertCorrect();
  for (const row of rows) ctx.record({ ...row, compare: { kind: 'try' }, cost: outcome.cost });
}
