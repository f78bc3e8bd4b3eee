/**
 * The contention driver of the non-Temporal baselines (`pg-advisory`, `redis-lock`): the same levels, grant counts,
 * empty critical section, overlap detector and hand-off pairing as `lock-contention`, so the rows compare one to one.
 * @module
 */
import type { BaselineLock } from '../baselines/baseline.js';
import { CostMeter, forEachLimited } from '../cost.js';
import { abortable } from '../sample.js';
import { ScenarioSkipped, type ScenarioContext } from '../scenario.js';
import { contend, CriticalSections, GrantBudget, spread } from './_critical-section.js';
import { plural } from './_lib.js';

export interface BaselineOptions {
  /** The scenario's name, for labels. */
  readonly name: string;
  /** What the server is, for the skip note: `PostgreSQL at postgres://...`. */
  readonly server: string;
  /** Connects once and closes, to find out whether the server is there. */
  probe(): Promise<void>;
  /** One contender's handle on the lock of `level` (a lock name unique to this run and level). */
  connect(level: string): Promise<BaselineLock>;
  /** How many more connections the server takes now, if it can tell: a level that does not fit is skipped. */
  room?(): Promise<number | undefined>;
  /** A remark for every row's note (how waiting works). */
  readonly note: string;
}

/** The contention levels shared with `lock-contention`'s quick run, so every baseline row has a counterpart. */
export const BASELINE_LEVELS = [1, 8, 32] as const;

export async function runBaseline(ctx: ScenarioContext, options: BaselineOptions): Promise<void> {
  try {
    await options.probe();
  } catch (error) {
    throw new ScenarioSkipped(
      `${options.server} is unreachable (${error instanceof Error ? error.message : String(error)})`,
    );
  }
  // A shared server may be short of connections (other work on the machine holds them): such a level is skipped
  // with a note, and the scenario reported as partly skipped, rather than failed.
  const skipped: string[] = [];
  for (const contenders of BASELINE_LEVELS) {
    const room = await options.room?.();
    if (room !== undefined && room < contenders) {
      skipped.push(`${plural(contenders, 'contender')}: ${options.server} takes only ${room} more connections`);
      ctx.progress.log(`skipped ${skipped.at(-1)}`);
      continue;
    }
    const refused = await measureLevel(ctx, options, contenders);
    if (refused !== undefined) {
      skipped.push(`${plural(contenders, 'contender')}: ${options.server} refused a connection (${refused})`);
      ctx.progress.log(`skipped ${skipped.at(-1)}`);
    }
  }
  if (skipped.length === BASELINE_LEVELS.length) throw new ScenarioSkipped(skipped.join('; '));
  if (skipped.length > 0) throw new ScenarioSkipped(`${skipped.join('; ')} (the other levels ran)`);
}

/** Measures one level; returns why a connection was refused instead, if one was (the level is then skipped). */
async function measureLevel(
  ctx: ScenarioContext,
  options: BaselineOptions,
  contenders: number,
): Promise<string | undefined> {
  const grants = Math.max(ctx.warmup + ctx.samples, contenders);
  const label = plural(contenders, 'contender');
  ctx.progress.update(`${label}: connecting`);
  const locks: BaselineLock[] = [];
  try {
    try {
      await forEachLimited(
        Array.from({ length: contenders }, (_, index) => index),
        8,
        async () => {
          locks.push(await options.connect(`${ctx.taskQueue}-c${contenders}`));
        },
      );
    } catch (error) {
      // The probe connected: a refusal now is the server's connection limit, or a passing failure.
      return error instanceof Error ? error.message : String(error);
    }
    const monitor = new CriticalSections(`${options.name}, ${label}`, 1, locks[0]!.fenced);
    const budget = new GrantBudget(grants);
    const meter = await CostMeter.start(ctx);
    const perContender = await contend(ctx.signal, contenders, budget, async (index, stop) => {
      const lock = locks[index]!;
      // A waiter blocked in the server gives up when the others stop; closing its connection ends the query.
      await monitor.hold(await abortable(lock.acquire(), stop));
      await lock.release();
      ctx.progress.update(`${label}: ${monitor.count}/${grants} grants`);
    });
    const { processCpuMs, peakRssBytes } = await meter.stop();
    ctx.record(
      monitor.handOffRow(ctx.warmup, grants, {
        metric: `hand-off, ${label}`,
        note:
          `${label}, one connection each; ${grants} grants (first ${ctx.warmup} not measured), grants per contender ` +
          `${spread(perContender)}; ${options.note}`,
        compare: { kind: 'hand-off', contenders },
        cost: {
          operations: monitor.count,
          ...(processCpuMs === undefined ? {} : { processCpuMs }),
          ...(peakRssBytes === undefined ? {} : { peakRssBytes }),
        },
      }),
    );
    return undefined;
  } finally {
    await Promise.allSettled(locks.map((lock) => lock.close()));
  }
}
