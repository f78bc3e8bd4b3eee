/**
 * `lock-many`: many locks at once, 4 contenders each, empty critical sections: aggregate hand-offs per second over
 * all locks, against one lock with 4 contenders measured the same way in the same scenario. Each lock has its own
 * overlap detector and fencing-token check.
 * @module
 */
import { setMaxListeners } from 'node:events';
import { defineScenario, type ScenarioContext } from '../scenario.js';
import { contend, CriticalSections, GrantBudget, pool, spread } from './_critical-section.js';
import { MAX_PROCESSES, plural, processesNote, runLevel } from './_lib.js';

const CONTENDERS_PER_LOCK = 4;

export default defineScenario({
  name: 'lock-many',
  description:
    '1, 100 and 1,000 locks x 4 contenders each (quick: 1 and 20), empty critical section: aggregate hand-offs ' +
    'per second, overlap and fencing tokens checked per lock.',
  async run(ctx) {
    for (const locks of ctx.quick ? [1, 20] : [1, 100, 1000]) await measureLocks(ctx, locks);
  },
});

/** Grants per lock: one lock gets the usual sample count; many locks a few rounds each (the total is what counts). */
function grantsPerLock(ctx: ScenarioContext, locks: number): number {
  if (locks === 1) return ctx.warmup + ctx.samples;
  if (ctx.quick) return 3 * CONTENDERS_PER_LOCK;
  return (locks >= 1000 ? 2 : 5) * CONTENDERS_PER_LOCK;
}

async function measureLocks(ctx: ScenarioContext, locks: number): Promise<void> {
  const contenders = locks * CONTENDERS_PER_LOCK;
  const grants = grantsPerLock(ctx, locks);
  // The first round of each lock (every contender's first request arriving together) is not measured.
  const warmup = locks === 1 ? ctx.warmup : CONTENDERS_PER_LOCK;
  const processes = Math.min(contenders, MAX_PROCESSES);
  const label = `${plural(locks, 'lock')} x ${CONTENDERS_PER_LOCK} contenders`;
  const monitors = Array.from({ length: locks }, (_, index) => new CriticalSections(`lock-many, lock ${index}`));
  let granted = 0;
  const outcome = await runLevel(
    ctx,
    { name: `locks${locks}`, processes },
    async (level) => {
      // A failure on one lock stops the contenders of every lock (each lock's own contend stops its own).
      const failed = new AbortController();
      const stop = AbortSignal.any([ctx.signal, failed.signal]);
      setMaxListeners(0, stop);
      const outcomes = await Promise.allSettled(
        monitors.map((monitor, lock) =>
          contend(stop, CONTENDERS_PER_LOCK, new GrantBudget(grants), async (index, signal) => {
            const { coordinator } = level.processOf(lock * CONTENDERS_PER_LOCK + index);
            const resourceId = `${level.taskQueue}/lock-${lock}`;
            await coordinator.withLock(resourceId, (lease) => monitor.hold(lease.token), { signal });
            granted++;
            ctx.progress.update(`${label}: ${granted}/${grants * locks} grants`);
          }).catch((error: unknown) => {
            failed.abort(error);
            throw error;
          }),
        ),
      );
      const failure = outcomes.find((outcome) => outcome.status === 'rejected');
      if (failure !== undefined) throw failure.reason;
      return outcomes.flatMap((outcome) => (outcome.status === 'fulfilled' ? outcome.value : []));
    },
    () => granted,
  );
  const handOffs = pool(monitors, warmup);
  for (const monitor of monitors) monitor.assertCorrect(grants);
  ctx.record({
    metric: `aggregate, ${label}`,
    samples: handOffs.latencies,
    elapsed: handOffs.elapsed,
    operations: handOffs.operations,
    note:
      `${processesNote(contenders, processes)}; ${grants} grants per lock (first ${warmup} of each not measured), ` +
      `grants per contender ${spread(outcome.value)}; latencies are per-lock hand-offs, pooled`,
    compare: { kind: 'hand-off', contenders: CONTENDERS_PER_LOCK, resources: locks },
    cost: outcome.cost,
  });
}
