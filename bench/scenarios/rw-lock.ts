/**
 * `rw-lock`: 8 readers and 1 writer looping `withReadLock` / `withWriteLock` on one read-write lock around a 50 ms
 * critical section, against 9 contenders looping `withLock` on one plain lock around the same section: grants per
 * second of each, in the same run. With empty sections both would be bound by the same signals per grant (a release
 * and the next request each); a section that takes time is where readers holding together pay. Each contender is a
 * client process of its own. A live check fails the run if a writer ever holds beside anyone; readers must be seen
 * holding together.
 * @module
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { defineScenario, type Row, type ScenarioContext } from '../scenario.js';
import { contend, CorrectnessError, GrantBudget, spread } from './_critical-section.js';
import { runLevel } from './_lib.js';

const READERS = 8;
const WRITERS = 1;
const CONTENDERS = READERS + WRITERS;
const SECTION_MS = 50;

export default defineScenario({
  name: 'rw-lock',
  description: `One read-write lock, ${READERS} readers and ${WRITERS} writer, against one plain lock and ${CONTENDERS} contenders: grants per second, ${SECTION_MS} ms critical sections, writer exclusivity checked.`,
  async run(ctx) {
    const plain = await measure(ctx, 'plain');
    await measure(ctx, 'read-write', plain);
  },
});

/** Who holds the resource now, checked at every entry. */
class Holders {
  readers = 0;
  writers = 0;
  mostReaders = 0;
  readonly waits: number[] = [];

  async hold(mode: 'read' | 'write' | 'lock', asked: number): Promise<void> {
    this.waits.push(performance.now() - asked);
    if (mode === 'read') this.readers++;
    else this.writers++;
    this.mostReaders = Math.max(this.mostReaders, this.readers);
    if (this.writers > 1 || (this.writers === 1 && this.readers > 0)) {
      throw new CorrectnessError(`${this.writers} writers and ${this.readers} readers held at once`);
    }
    await sleep(SECTION_MS);
    if (mode === 'read') this.readers--;
    else this.writers--;
  }
}

async function measure(ctx: ScenarioContext, kind: 'plain' | 'read-write', plain?: Row): Promise<Row> {
  const grants = ctx.warmup + ctx.samples;
  const holders = new Holders();
  const budget = new GrantBudget(grants);
  let start = 0;
  const outcome = await runLevel(
    ctx,
    { name: `rw-${kind}`, processes: CONTENDERS },
    (level) => {
      start = performance.now();
      return contend(ctx.signal, CONTENDERS, budget, async (index, signal) => {
        const { coordinator } = level.processOf(index);
        const resourceId = `${level.taskQueue}/${kind}`;
        const mode = kind === 'plain' ? 'lock' : index < READERS ? 'read' : 'write';
        const asked = performance.now();
        const section = () => holders.hold(mode, asked);
        if (mode === 'lock') await coordinator.withLock(resourceId, section, { signal });
        else if (mode === 'read') await coordinator.withReadLock(resourceId, section, { signal });
        else await coordinator.withWriteLock(resourceId, section, { signal });
        ctx.progress.update(`${kind}: ${holders.waits.length}/${grants} grants`);
      });
    },
    () => holders.waits.length,
  );
  const elapsed = performance.now() - start;
  if (kind === 'read-write' && holders.mostReaders < 2) {
    throw new CorrectnessError(`readers never held together (at most ${holders.mostReaders})`);
  }
  const throughput = (holders.waits.length * 1000) / elapsed;
  const plainThroughput = plain && ((plain.operations ?? 0) * 1000) / (plain.elapsed ?? Number.NaN);
  const row: Row = {
    metric: `grant wait, ${kind === 'plain' ? `plain lock, ${CONTENDERS} contenders` : `read-write lock, ${READERS} readers + ${WRITERS} writer`}`,
    samples: holders.waits.slice(ctx.warmup),
    elapsed,
    operations: holders.waits.length,
    note:
      `${CONTENDERS} client processes, ${SECTION_MS} ms sections; ${holders.waits.length} grants in ${Math.round(elapsed)} ms ` +
      `(${throughput.toFixed(1)}/s), grants per contender ${spread(outcome.value)}` +
      (kind === 'read-write'
        ? `; at most ${holders.mostReaders} readers at once; ${(throughput / plainThroughput!).toFixed(2)}x the plain lock's grants/s`
        : ''),
    cost: outcome.cost,
  };
  ctx.record(row);
  return row;
}
