/**
 * `lock-contention`: one lock, many contenders looping `withLock` with an empty critical section. Measures the
 * hand-off latency (a holder calls release -> the next holder's fn starts, paired by grant order) and hand-offs per
 * second, while the overlap detector and the fencing-token check watch every grant.
 * @module
 */
import { defineScenario, type ScenarioContext } from '../scenario.js';
import { contend, CriticalSections, GrantBudget, spread } from './_critical-section.js';
import { MAX_PROCESSES, plural, processesNote, runLevel } from './_lib.js';

export default defineScenario({
  name: 'lock-contention',
  description:
    'One lock x 1/8/32/128/1,000 contenders (quick: 1/8/32), empty critical section: hand-off latency (release ' +
    "called -> next holder's fn starts) and hand-offs per second, overlap and fencing-token checked.",
  async run(ctx) {
    for (const contenders of ctx.contenders ?? (ctx.quick ? [1, 8, 32] : [1, 8, 32, 128, 1000])) {
      await measureContention(ctx, contenders);
    }
  },
});

async function measureContention(ctx: ScenarioContext, contenders: number): Promise<void> {
  // Every contender gets the lock at least once; 1,000 contenders are also the 1,000-waiter burst.
  const grants = Math.max(ctx.warmup + ctx.samples, contenders);
  const processes = Math.min(contenders, MAX_PROCESSES);
  const label = plural(contenders, 'contender');
  const monitor = new CriticalSections(`lock-contention, ${label}`);
  const budget = new GrantBudget(grants);
  const outcome = await runLevel(
    ctx,
    { name: `c${contenders}`, processes },
    async (level) => {
      const resourceId = `${level.taskQueue}/lock`;
      return contend(ctx.signal, contenders, budget, async (index, signal) => {
        const { coordinator } = level.processOf(index);
        await coordinator.withLock(resourceId, (lease) => monitor.hold(lease.token), { signal });
        ctx.progress.update(`${label}: ${monitor.count}/${grants} grants`);
      });
    },
    () => monitor.count,
  );
  ctx.record(
    monitor.handOffRow(ctx.warmup, grants, {
      metric: `hand-off, ${label}`,
      note:
        `${processesNote(contenders, processes)}; ${grants} grants (first ${ctx.warmup} not measured), ` +
        `grants per contender ${spread(outcome.value)}; withLock with the default ttl`,
      compare: { kind: 'hand-off', contenders },
      cost: outcome.cost,
    }),
  );
}
