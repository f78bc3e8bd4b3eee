/**
 * `semaphore`: one semaphore of limit 4, 32 contenders looping `withSemaphore` with an empty critical section. The
 * slot hand-off latency pairs each holder's start with the release that freed its slot (the (k - 3)-th release for the
 * k-th holder); the overlap detector checks that never more than 4 are inside, and tokens are unique.
 * @module
 */
import { defineScenario } from '../scenario.js';
import { contend, CriticalSections, GrantBudget, spread } from './_critical-section.js';
import { MAX_PROCESSES, processesNote, runLevel } from './_lib.js';

const LIMIT = 4;
const CONTENDERS = 32;

export default defineScenario({
  name: 'semaphore',
  description: `One semaphore, limit ${LIMIT}, ${CONTENDERS} contenders, empty critical section: slot hand-off latency and grants per second, at most ${LIMIT} inside checked.`,
  async run(ctx) {
    const grants = ctx.warmup + ctx.samples;
    const processes = Math.min(CONTENDERS, MAX_PROCESSES);
    const monitor = new CriticalSections(`semaphore, limit ${LIMIT}`, LIMIT);
    const budget = new GrantBudget(grants);
    const outcome = await runLevel(
      ctx,
      { name: 'semaphore', processes },
      (level) =>
        contend(ctx.signal, CONTENDERS, budget, async (index, signal) => {
          const { coordinator } = level.processOf(index);
          await coordinator.withSemaphore(`${level.taskQueue}/pool`, LIMIT, (lease) => monitor.hold(lease.token), {
            signal,
          });
          ctx.progress.update(`${monitor.count}/${grants} grants`);
        }),
      () => monitor.count,
    );
    ctx.record(
      monitor.handOffRow(ctx.warmup, grants, {
        metric: `slot hand-off, limit ${LIMIT}, ${CONTENDERS} contenders`,
        note:
          `${processesNote(CONTENDERS, processes)}; ${grants} grants (first ${ctx.warmup} not measured), ` +
          `grants per contender ${spread(outcome.value)}`,
        compare: { kind: 'hand-off', contenders: CONTENDERS, limit: LIMIT },
        cost: outcome.cost,
      }),
    );
  },
});
