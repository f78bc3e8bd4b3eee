// Checks and draws the demo's per-customer queue runs.

export interface Attempt {
  readonly start: number;
  end: number | undefined;
  ok: boolean | undefined;
}

export interface JobRun {
  readonly customer: string;
  /** The job's number within its customer's queue, from 1, in enqueue order. */
  readonly n: number;
  readonly attempts: Attempt[];
}

export interface QueueChecks {
  /** Jobs that started before the previous job of their customer finished, or out of enqueue order. */
  readonly orderViolations: readonly string[];
  /** The most customers that had a job running at the same moment. */
  readonly mostCustomersAtOnce: number;
  /** Jobs that needed more than one attempt, and whether their customer's next job waited for the last one. */
  readonly retries: readonly { readonly job: string; readonly attempts: number; readonly nextWaited: boolean }[];
}

const label = (run: JobRun) => `${run.customer}#${run.n}`;
const firstStart = (run: JobRun) => run.attempts[0]?.start ?? Number.POSITIVE_INFINITY;
const lastEnd = (run: JobRun) => run.attempts.at(-1)?.end ?? Number.POSITIVE_INFINITY;

export function checkRuns(runs: readonly JobRun[]): QueueChecks {
  const byCustomer = new Map<string, JobRun[]>();
  for (const run of runs) byCustomer.set(run.customer, [...(byCustomer.get(run.customer) ?? []), run]);
  const orderViolations: string[] = [];
  const retries: { job: string; attempts: number; nextWaited: boolean }[] = [];
  for (const jobs of byCustomer.values()) {
    const inOrder = [...jobs].sort((a, b) => a.n - b.n);
    inOrder.forEach((run, i) => {
      const next = inOrder[i + 1];
      if (next && firstStart(next) < lastEnd(run))
        orderViolations.push(`${label(next)} started before ${label(run)} ended`);
      if (run.attempts.length > 1) {
        retries.push({
          job: label(run),
          attempts: run.attempts.length,
          nextWaited: !next || firstStart(next) >= lastEnd(run),
        });
      }
    });
  }
  // Sweep over start and end moments, counting customers with a job running.
  const moments = runs.flatMap((run) => run.attempts.flatMap((a) => [a.start, a.end ?? Number.POSITIVE_INFINITY]));
  let mostCustomersAtOnce = 0;
  for (const moment of moments) {
    const busy = new Set(
      runs
        .filter((run) => run.attempts.some((a) => a.start <= moment && moment < (a.end ?? Number.POSITIVE_INFINITY)))
        .map((run) => run.customer),
    );
    mostCustomersAtOnce = Math.max(mostCustomersAtOnce, busy.size);
  }
  return { orderViolations, mostCustomersAtOnce, retries };
}

/**
 * One row per customer, one column per `step` ms from `origin`: the job's number while an attempt runs, `x` while an
 * attempt that failed runs, `·` while the customer has nothing running.
 */
export function drawTimeline(runs: readonly JobRun[], origin: number, step: number): string[] {
  const end = Math.max(...runs.map(lastEnd).filter(Number.isFinite), origin);
  const columns = Math.max(1, Math.ceil((end - origin) / step));
  const customers = [...new Set(runs.map((run) => run.customer))];
  const width = Math.max(...customers.map((c) => c.length));
  const rows = customers.map((customer) => {
    const cells = Array.from({ length: columns }, () => '·');
    for (const run of runs.filter((r) => r.customer === customer)) {
      for (const attempt of run.attempts) {
        const from = Math.floor((attempt.start - origin) / step);
        const to = Math.max(from + 1, Math.round(((attempt.end ?? end) - origin) / step));
        for (let c = from; c < Math.min(to, columns); c++) cells[c] = attempt.ok === false ? 'x' : String(run.n);
      }
    }
    return `${customer.padEnd(width)} │${cells.join('')}│`;
  });
  const seconds = Array.from({ length: columns }, (_, c) => (c % 10 === 0 ? '╵' : ' ')).join('');
  const scale = `${''.padEnd(width)}  ${seconds}  (one column = ${step} ms, ╵ every ${(step * 10) / 1000} s)`;
  return [...rows, scale];
}
