/**
 * What the rows of one run say side by side: ratios to the `floor` metrics and to the baselines measured in the same
 * run, the cost per operation, and the performance targets of the lock and queue issues (reported, never asserted).
 * Rows take part through their `compare` tag (see `Comparable` in `scenario.ts`); whatever was not run in this
 * invocation is left out, or marked `n/a`.
 * @module
 */
import type { Result } from './report.js';

export const BASELINES = ['sample-mutex', 'pg-advisory', 'redis-lock'] as const;

/** The floor metrics (scenario `floor`) and the queue's activity floor, when they ran in this invocation. */
interface Floors {
  /** `signal->open-update`: the cheapest signal-driven hand-off at light load. */
  readonly handOff?: Result;
  readonly backToBack?: Result;
  readonly update?: Result;
  readonly signalWithStart?: Result;
  /** `queue-single-key`'s activity round trip. */
  readonly activity?: Result;
}

function floors(results: readonly Result[]): Floors {
  const floor = (metric: string) => results.find((result) => result.scenario === 'floor' && result.metric === metric);
  return {
    handOff: floor('signal->open-update'),
    backToBack: floor('signal->open-update back-to-back'),
    update: floor('update-roundtrip'),
    signalWithStart: floor('signal-with-start'),
    activity: results.find((result) => result.compare?.kind === 'activity-floor'),
  };
}

export interface Ratio {
  readonly scenario: string;
  readonly metric: string;
  /** The floor metric the row is read against. */
  readonly reference?: string;
  /** Row p50 / reference p50. */
  readonly latency?: number;
  /** Row throughput / (1 / reference p50). */
  readonly throughput?: number;
  /** Row throughput / the floor's back-to-back signal hand-offs per second (the transfer-queue cap). */
  readonly backToBack?: number;
  /** Row throughput / each baseline's at the same contention. */
  readonly baselines: Readonly<Partial<Record<(typeof BASELINES)[number], number>>>;
}

/** A single lock's hand-off row: comparable one to one with a baseline row of the same contention. */
function isSingleLock(result: Result): boolean {
  return (
    result.compare?.kind === 'hand-off' &&
    (result.compare.resources ?? 1) === 1 &&
    (result.compare.limit ?? 1) === 1 &&
    result.compare.contenders !== undefined
  );
}

function reference(result: Result, floor: Floors): { name: string; p50: number } | undefined {
  switch (result.compare?.kind) {
    case 'hand-off':
      return floor.handOff && { name: 'signal->open-update', p50: floor.handOff.p50 };
    case 'acquire-release':
    case 'try':
      return floor.update && { name: 'update-roundtrip', p50: floor.update.p50 };
    case 'enqueue':
      return floor.signalWithStart && { name: 'signal-with-start', p50: floor.signalWithStart.p50 };
    case 'job':
      return (
        floor.handOff &&
        floor.activity && {
          name: 'signal->open-update + activity round trip',
          p50: floor.handOff.p50 + floor.activity.p50,
        }
      );
    default:
      return undefined;
  }
}

export function ratios(results: readonly Result[]): Ratio[] {
  const floor = floors(results);
  const rows: Ratio[] = [];
  for (const result of results) {
    if (result.compare === undefined || result.compare.kind === 'activity-floor') continue;
    const ref = reference(result, floor);
    const baselines: Partial<Record<(typeof BASELINES)[number], number>> = {};
    if (isSingleLock(result) && !(BASELINES as readonly string[]).includes(result.scenario)) {
      for (const baseline of BASELINES) {
        const other = results.find(
          (candidate) =>
            candidate.scenario === baseline &&
            isSingleLock(candidate) &&
            candidate.compare?.contenders === result.compare?.contenders,
        );
        if (other?.throughput && result.throughput !== null) baselines[baseline] = result.throughput / other.throughput;
      }
    }
    const backToBack =
      result.compare.kind === 'hand-off' && floor.backToBack?.throughput && result.throughput !== null
        ? result.throughput / floor.backToBack.throughput
        : undefined;
    rows.push({
      scenario: result.scenario,
      metric: result.metric,
      ...(ref === undefined
        ? {}
        : {
            reference: ref.name,
            latency: result.p50 / ref.p50,
            ...(result.throughput === null ? {} : { throughput: (result.throughput * ref.p50) / 1000 }),
          }),
      ...(backToBack === undefined ? {} : { backToBack }),
      baselines,
    });
  }
  return rows;
}

export interface Target {
  readonly target: string;
  readonly measured: string;
  readonly status: 'met' | 'not met' | 'n/a';
}

const ms = (value: number): string => `${value.toFixed(1)} ms`;
const perSecond = (value: number): string => `${value.toFixed(1)}/s`;
const times = (value: number): string => `${value >= 10 ? value.toFixed(0) : value.toFixed(2)}x`;

/** The operations a row's cost is divided by. */
export function costedOperations(result: Result): number {
  return result.cost?.operations ?? result.operations ?? result.count;
}

/** Server and bench process CPU per operation, when both were measured. */
function cpuPerOperation(result: Result | undefined): number | undefined {
  if (result?.cost?.serverCpuMs === undefined || result.cost.processCpuMs === undefined) return undefined;
  const operations = costedOperations(result);
  return operations === 0 ? undefined : (result.cost.serverCpuMs + result.cost.processCpuMs) / operations;
}

function check(target: string, measured: string, met: boolean): Target {
  return { target, measured, status: met ? 'met' : 'not met' };
}

function missing(target: string, what: string): Target {
  return { target, measured: `not run: ${what}`, status: 'n/a' };
}

/** The targets of the lock and queue issues, measured against this run's rows. */
export function targets(results: readonly Result[]): Target[] {
  const floor = floors(results);
  const find = (scenario: string, predicate: (result: Result) => boolean) =>
    results.find((result) => result.scenario === scenario && predicate(result));
  const contention = (scenario: string, contenders: number) =>
    find(scenario, (result) => isSingleLock(result) && result.compare?.contenders === contenders);
  const list: Target[] = [];

  const lockRows = results.filter(
    (result) => result.scenario === 'lock-contention' && isSingleLock(result) && result.compare!.contenders! > 1,
  );
  if (lockRows.length === 0)
    list.push(missing('hand-off p50 <= 1.5x floor signal->open-update p50', 'lock-contention'));
  for (const row of lockRows) {
    const target = `hand-off p50 <= 1.5x floor signal->open-update p50, ${row.compare!.contenders} contenders`;
    if (!floor.handOff) list.push(missing(target, 'floor'));
    else {
      const ratio = row.p50 / floor.handOff.p50;
      list.push(check(target, `${ms(row.p50)} = ${times(ratio)} of ${ms(floor.handOff.p50)}`, ratio <= 1.5));
    }
  }

  {
    const target = '32-contender hand-offs/s >= 0.6 / floor signal->open-update p50';
    const row = contention('lock-contention', 32);
    if (!row?.throughput) list.push(missing(target, 'lock-contention'));
    else if (!floor.handOff) list.push(missing(target, 'floor'));
    else {
      const wanted = 600 / floor.handOff.p50;
      // Server, worker and clients share this machine's cores: CPU per hand-off bounds the rate whatever the protocol.
      // The level's CPU includes its start-up burst and warm-up, so it is no exact bound for the measured samples.
      const cpu = cpuPerOperation(row);
      const floorCpu = cpuPerOperation(floor.backToBack);
      const cpuNote =
        cpu === undefined
          ? ''
          : `; CPU ${ms(cpu)}/hand-off, warm-up included (floor back-to-back ` +
            `${floorCpu === undefined ? '-' : ms(floorCpu)})`;
      list.push(
        check(
          target,
          `${perSecond(row.throughput)} vs ${perSecond(wanted)} wanted${cpuNote}`,
          row.throughput >= wanted,
        ),
      );
    }
  }

  for (const contenders of [8, 32]) {
    const target = `hand-offs/s >= 2x sample-mutex, ${contenders} contenders`;
    const ours = contention('lock-contention', contenders);
    const theirs = contention('sample-mutex', contenders);
    if (!ours?.throughput) list.push(missing(target, 'lock-contention'));
    else if (!theirs?.throughput) list.push(missing(target, 'sample-mutex'));
    else {
      const ratio = ours.throughput / theirs.throughput;
      list.push(
        check(target, `${perSecond(ours.throughput)} vs ${perSecond(theirs.throughput)} = ${times(ratio)}`, ratio >= 2),
      );
    }
  }

  {
    const target = 'lock-many aggregate hand-offs/s >= 10x one lock (4 contenders each)';
    const many = results.filter((result) => result.scenario === 'lock-many' && result.throughput !== null);
    const single = many.find((result) => (result.compare?.resources ?? 1) === 1);
    const widest = many.reduce<Result | undefined>(
      (best, result) => ((result.compare?.resources ?? 1) > (best?.compare?.resources ?? 1) ? result : best),
      undefined,
    );
    if (!single?.throughput || !widest?.throughput || widest === single) list.push(missing(target, 'lock-many'));
    else {
      const ratio = widest.throughput / single.throughput;
      list.push(
        check(
          target,
          `${widest.compare?.resources} locks ${perSecond(widest.throughput)} vs 1 lock ${perSecond(single.throughput)} = ${times(ratio)}`,
          ratio >= 10,
        ),
      );
    }
  }

  const singleKey = find('queue-single-key', (result) => result.compare?.kind === 'job');
  {
    const target = 'per-job overhead <= 2x (floor signal->open-update p50 + activity round trip p50)';
    if (!singleKey?.throughput) list.push(missing(target, 'queue-single-key'));
    else if (!floor.handOff || !floor.activity) list.push(missing(target, 'floor'));
    else {
      const overhead = 1000 / singleKey.throughput;
      const bound = 2 * (floor.handOff.p50 + floor.activity.p50);
      list.push(
        check(
          target,
          `${ms(overhead)} per job (p50 interval ${ms(singleKey.p50)}) vs ${ms(bound)} = 2x (${ms(floor.handOff.p50)} + ${ms(floor.activity.p50)})`,
          overhead <= bound,
        ),
      );
    }
  }

  {
    const target = 'queue-many-keys aggregate jobs/s >= 10x one key (issue 4)';
    const many = find('queue-many-keys', (result) => result.compare?.kind === 'job');
    if (!many?.throughput) list.push(missing(target, 'queue-many-keys'));
    else if (!singleKey?.throughput) list.push(missing(target, 'queue-single-key'));
    else {
      const ratio = many.throughput / singleKey.throughput;
      list.push(
        check(
          target,
          `${perSecond(many.throughput)} vs ${perSecond(singleKey.throughput)} = ${times(ratio)}`,
          ratio >= 10,
        ),
      );
    }
  }

  list.push(...queueSpeedTargets(results, floor));

  {
    const target = 'uncontended withLock p50 (warm ID) <= 3x floor update-roundtrip p50 (issue 3)';
    const warm = find(
      'lock-uncontended',
      (result) => result.compare?.kind === 'acquire-release' && result.metric.includes('warm'),
    );
    if (!warm) list.push(missing(target, 'lock-uncontended'));
    else if (!floor.update) list.push(missing(target, 'floor'));
    else {
      const ratio = warm.p50 / floor.update.p50;
      list.push(check(target, `${ms(warm.p50)} = ${times(ratio)} of ${ms(floor.update.p50)}`, ratio <= 3));
    }
  }

  {
    const target = '1,000 waiters: time per hand-off <= 1.5x the 32-contender one (issue 3)';
    const thousand = contention('lock-contention', 1000);
    const thirtyTwo = contention('lock-contention', 32);
    if (!thousand?.throughput || !thirtyTwo?.throughput) {
      list.push(missing(target, 'lock-contention with 1,000 contenders (full run only)'));
    } else {
      const ratio = thirtyTwo.throughput / thousand.throughput;
      list.push(
        check(
          target,
          `${ms(1000 / thousand.throughput)} vs ${ms(1000 / thirtyTwo.throughput)} = ${times(ratio)}`,
          ratio <= 1.5,
        ),
      );
    }
  }
  return list;
}

/** A Markdown table, aligned; columns from `numericFrom` on are right-aligned. */
export function markdownTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  numericFrom = 2,
): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]?.length ?? 0)));
  const line = (cells: readonly string[]) =>
    `| ${cells
      .map((cell, column) =>
        column >= numericFrom ? cell.padStart(widths[column] ?? 0) : cell.padEnd(widths[column] ?? 0),
      )
      .join(' | ')} |`;
  const rule = `|${widths.map((width, column) => (column >= numericFrom ? `${'-'.repeat(width + 1)}:` : '-'.repeat(width + 2))).join('|')}|`;
  return [line(header), rule, ...rows.map(line)].join('\n');
}

const ratioCell = (value: number | undefined): string => (value === undefined ? '-' : value.toFixed(2));

export function formatRatios(rows: readonly Ratio[]): string {
  return markdownTable(
    [
      'scenario',
      'metric',
      'reference (floor)',
      'p50 / ref p50',
      'thr x ref p50',
      'thr / floor b2b',
      ...BASELINES.map((baseline) => `thr / ${baseline}`),
    ],
    rows.map((row) => [
      row.scenario,
      row.metric,
      row.reference ?? '-',
      ratioCell(row.latency),
      ratioCell(row.throughput),
      ratioCell(row.backToBack),
      ...BASELINES.map((baseline) => ratioCell(row.baselines[baseline])),
    ]),
    3,
  );
}

export function formatCosts(results: readonly Result[]): string {
  const rows = results
    .filter((result) => result.cost !== undefined)
    .map((result) => {
      const cost = result.cost!;
      const operations = costedOperations(result);
      const perOp = (value: number | undefined) =>
        value === undefined || operations === 0 ? '-' : (value / operations).toFixed(2);
      return [
        result.scenario,
        result.metric,
        String(operations),
        cost.historyEventsPerOp === undefined ? '-' : cost.historyEventsPerOp.toFixed(1),
        cost.serverCpuMs === undefined ? '-' : String(cost.serverCpuMs),
        perOp(cost.serverCpuMs),
        perOp(cost.processCpuMs),
        cost.peakRssBytes === undefined ? '-' : (cost.peakRssBytes / 2 ** 20).toFixed(0),
      ];
    });
  return markdownTable(
    [
      'scenario',
      'metric',
      'ops',
      'history events/op',
      'server CPU ms',
      'server CPU ms/op',
      'bench process CPU ms/op',
      'peak RSS MiB',
    ],
    rows,
  );
}

export function formatTargets(list: readonly Target[]): string {
  return markdownTable(
    ['target', 'measured', 'result'],
    list.map((target) => [target.target, target.measured, target.status]),
    3,
  );
}

/** The sections printed after the main table: ratios, cost per operation and targets (empty ones left out). */
export function formatComparisons(results: readonly Result[]): string {
  const sections: string[] = [];
  const ratioRows = ratios(results).filter(
    (row) =>
      row.latency !== undefined ||
      row.throughput !== undefined ||
      row.backToBack !== undefined ||
      Object.keys(row.baselines).length > 0,
  );
  if (ratioRows.length > 0) {
    sections.push(
      'Ratios (same run). p50 / ref p50: latency against the floor metric named; thr x ref p50: throughput against ' +
        '1 / (floor p50); thr / floor b2b: against back-to-back signal hand-offs; thr / <baseline>: against that ' +
        'baseline at the same contention.\n\n' +
        formatRatios(ratioRows),
    );
  }
  if (results.some((result) => result.cost !== undefined)) {
    sections.push(
      'Cost per operation. History events over every run of the workflows involved; server CPU of the Temporal ' +
        'dev server process; bench process = clients and the in-process worker.\n\n' +
        formatCosts(results),
    );
  }
  if (results.some((result) => result.compare !== undefined)) {
    sections.push('Targets (reported, not asserted).\n\n' + formatTargets(targets(results)));
  }
  return sections.join('\n\n');
}

/**
 * Issue 20, item 5: one key's per-job p50 against the floor's signal -> open update, for each way of running jobs
 * measured (the target is met by the best one); and the many-keys aggregate beside BullMQ's with per-key order.
 */
function queueSpeedTargets(results: readonly Result[], floor: Floors): Target[] {
  const list: Target[] = [];
  const target = 'one key, per-job p50 <= 2x floor signal->open-update p50, best setting (issue 20)';
  const singleKey = results.filter(
    (result) => result.scenario === 'queue-single-key' && result.compare?.kind === 'job',
  );
  if (singleKey.length === 0) list.push(missing(target, 'queue-single-key'));
  else if (!floor.handOff) list.push(missing(target, 'floor'));
  else {
    const handOff = floor.handOff.p50;
    const measured = singleKey
      .map(
        (row) =>
          `${row.metric.replace(/^job, 1 key x \d+ no-op jobs,? ?/, '') || 'normal jobs'} ${ms(row.p50)} = ${times(row.p50 / handOff)}`,
      )
      .join('; ');
    const best = Math.min(...singleKey.map((row) => row.p50));
    list.push(check(target, `${measured} (floor ${ms(handOff)})`, best <= 2 * handOff));
  }
  const many = results.filter((result) => result.scenario === 'queue-many-keys' && result.compare?.kind === 'job');
  const bull = results.find(
    (result) => result.scenario === 'bullmq' && result.compare?.kind === 'job' && result.metric.startsWith('aggregate'),
  );
  const versus = 'queue-many-keys aggregate jobs/s beside BullMQ, one queue + concurrency-1 worker per key';
  if (many.length === 0) list.push(missing(versus, 'queue-many-keys'));
  else if (!bull?.throughput) list.push(missing(versus, 'bullmq'));
  else {
    const measured = many
      .filter((row) => row.throughput !== null)
      .map((row) => `${row.metric} ${perSecond(row.throughput!)} = ${times(row.throughput! / bull.throughput!)}`)
      .join('; ');
    list.push({ target: versus, measured: `${measured} of BullMQ's ${perSecond(bull.throughput)}`, status: 'n/a' });
  }
  return list;
}
