/**
 * `lock-uncontended`: `withLock` with an empty critical section, one call at a time, timed from the call to its
 * return (acquire + release). On a fresh resource ID every time (signal-with-start starts the lock workflow), and on
 * one warm resource ID (its workflow still running, lingering between calls).
 * @module
 */
import { sampleSequentially } from '../sample.js';
import { defineScenario, type Row, type ScenarioContext } from '../scenario.js';
import { CriticalSections } from './_critical-section.js';
import { runLevel } from './_lib.js';

export default defineScenario({
  name: 'lock-uncontended',
  description:
    'withLock (acquire + release, empty critical section), sequential, on a fresh resource ID each time ' +
    '(starts the workflow) and on one warm ID (workflow running).',
  async run(ctx) {
    await measure(ctx, 'fresh');
    await measure(ctx, 'warm');
  },
});

async function measure(ctx: ScenarioContext, kind: 'fresh' | 'warm'): Promise<void> {
  const iterations = ctx.warmup + ctx.samples;
  // One monitor for the warm ID (its tokens must keep increasing), one per fresh ID.
  const monitors: CriticalSections[] = [];
  const monitorOf = (iteration: number): CriticalSections => {
    if (kind === 'fresh' || monitors.length === 0) {
      monitors.push(new CriticalSections(`lock-uncontended, ${kind} ID${kind === 'fresh' ? ` ${iteration}` : ''}`));
    }
    return monitors[monitors.length - 1]!;
  };
  const rows: Row[] = [];
  const outcome = await runLevel(
    ctx,
    { name: kind, processes: 1 },
    async (level) => {
      const { coordinator } = level.processOf(0);
      // sampleSequentially records its row; keep it until the cost is known.
      const capture = { ...ctx, record: (row: Row) => void rows.push(row) };
      await sampleSequentially(
        capture,
        `withLock, ${kind} resource ID`,
        async (iteration) => {
          const monitor = monitorOf(iteration);
          const resourceId = kind === 'warm' ? `${level.taskQueue}/lock` : `${level.taskQueue}/lock-${iteration}`;
          const start = performance.now();
          await coordinator.withLock(resourceId, (lease) => monitor.hold(lease.token));
          return performance.now() - start;
        },
        {
          note:
            kind === 'warm'
              ? 'the same resource ID each time: its workflow is running (it lingers 2 s after a release)'
              : 'a new resource ID each time: signal-with-start starts its workflow',
        },
      );
    },
    () => iterations,
  );
  for (const monitor of monitors) {
    monitor.analyse(0);
    monitor.assertCorrect();
  }
  for (const row of rows) ctx.record({ ...row, compare: { kind: 'acquire-release' }, cost: outcome.cost });
}
