// The queue fault cases' protected resource and their raw record. The resource is a PostgreSQL table of job effects
// keyed by job ID, written the way a real consumer of an at-least-once queue writes (an attempt that runs again after
// its worker died applies nothing twice). That dedup hides what the queue did, so the checks read the raw record
// instead: every attempt of every job, with when it started and finished and which worker process ran it. Same
// database as the fence (see fence.ts).
import type { ExecutionContext } from 'ava';
import pg from 'pg';
import type { Coordinator, EnqueueOptions } from '../../../lib/index.js';
import { connectionConfig, createSchema, DATABASE } from './fence.js';

export interface Effect {
  readonly jobId: string;
  readonly key: string;
  readonly seq: number;
}

/** One attempt of a job, as its worker recorded it. Times are `Date.now()` of the worker (ms since the epoch). */
export interface Attempt {
  readonly id: number;
  readonly jobId: string;
  readonly key: string;
  readonly seq: number;
  /** Temporal's attempt number: a retry of the same activity has a greater one. */
  readonly attempt: number;
  /** When the server scheduled this attempt (its clock), and its start-to-close timeout. */
  readonly scheduledAt: number;
  readonly timeout: number;
  /** The worker process: its name in the test (WORKER), else its pid. */
  readonly worker: string;
  readonly startedAt: number;
  /** When its effect was committed; `null` if it never got there (its worker died or stopped). */
  readonly finishedAt: number | null;
  /** Whether its effect was new, rather than already applied by an earlier attempt; `null` if it never finished. */
  readonly applied: boolean | null;
}

/** The fields of an activity's info (`Context.current().info`) an attempt records. */
export interface ActivityAttempt {
  readonly attempt: number;
  readonly currentAttemptScheduledTimestampMs: number;
  readonly startToCloseTimeoutMs: number;
}

/** Creates the effects and attempts tables once; adds the columns a database made before them lacks. */
export function setupEffects(): Promise<void> {
  return createSchema(
    7008,
    `
      CREATE TABLE IF NOT EXISTS queue_effects (
        id bigserial UNIQUE,
        run text NOT NULL,
        job_id text NOT NULL,
        key text NOT NULL,
        seq integer NOT NULL,
        PRIMARY KEY (run, job_id)
      );
      CREATE TABLE IF NOT EXISTS queue_attempts (
        id bigserial PRIMARY KEY,
        run text NOT NULL,
        job_id text NOT NULL,
        attempt integer NOT NULL
      );
      ALTER TABLE queue_attempts ADD COLUMN IF NOT EXISTS key text;
      ALTER TABLE queue_attempts ADD COLUMN IF NOT EXISTS seq integer;
      ALTER TABLE queue_attempts ADD COLUMN IF NOT EXISTS worker text;
      ALTER TABLE queue_attempts ADD COLUMN IF NOT EXISTS scheduled_at timestamptz;
      ALTER TABLE queue_attempts ADD COLUMN IF NOT EXISTS timeout_ms integer;
      ALTER TABLE queue_attempts ADD COLUMN IF NOT EXISTS started_at timestamptz;
      ALTER TABLE queue_attempts ADD COLUMN IF NOT EXISTS finished_at timestamptz;
      ALTER TABLE queue_attempts ADD COLUMN IF NOT EXISTS applied boolean;
      CREATE INDEX IF NOT EXISTS queue_attempts_run ON queue_attempts (run);`,
  );
}

export class Effects {
  private constructor(private readonly pool: pg.Pool) {}

  static open(): Effects {
    return new Effects(new pg.Pool({ ...connectionConfig(DATABASE), max: 8 }));
  }

  /**
   * Records that `worker` starts an attempt of `effect`'s job (`activity`: its activity info), before it does anything;
   * returns the attempt's ID.
   */
  async start(run: string, effect: Effect, activity: ActivityAttempt, worker: string): Promise<number> {
    const startedAt = new Date();
    const { rows } = await this.pool.query<{ id: string }>(
      `INSERT INTO queue_attempts (run, job_id, key, seq, attempt, scheduled_at, timeout_ms, worker, started_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id`,
      [
        run,
        effect.jobId,
        effect.key,
        effect.seq,
        activity.attempt,
        new Date(activity.currentAttemptScheduledTimestampMs),
        activity.startToCloseTimeoutMs,
        worker,
        startedAt,
      ],
    );
    return Number(rows[0]!.id);
  }

  /**
   * Applies a job's effect unless it already was: the dedup a real consumer of an at-least-once queue does. Returns
   * whether it was new.
   */
  async apply(run: string, effect: Effect): Promise<boolean> {
    const { rowCount } = await this.pool.query(
      'INSERT INTO queue_effects (run, job_id, key, seq) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING',
      [run, effect.jobId, effect.key, effect.seq],
    );
    return rowCount === 1;
  }

  /**
   * Records that attempt `id` is done, with its worker's clock read now: after its effect was committed, so the
   * attempt's recorded span covers all it did to the resource, and an attempt of another job that acted at the same
   * time shows as overlapping it.
   */
  async finish(id: number, applied: boolean): Promise<void> {
    await this.pool.query('UPDATE queue_attempts SET finished_at = $2, applied = $3 WHERE id = $1', [
      id,
      new Date(),
      applied,
    ]);
  }

  /** The effects of `run` in the order they were applied. */
  async applied(run: string): Promise<Effect[]> {
    const { rows } = await this.pool.query<{ job_id: string; key: string; seq: number }>(
      'SELECT job_id, key, seq FROM queue_effects WHERE run = $1 ORDER BY id',
      [run],
    );
    return rows.map((row) => ({ jobId: row.job_id, key: row.key, seq: row.seq }));
  }

  /** How many jobs of `run` have a finished attempt. */
  async finishedJobs(run: string): Promise<number> {
    const { rows } = await this.pool.query<{ count: string }>(
      'SELECT count(DISTINCT job_id) AS count FROM queue_attempts WHERE run = $1 AND finished_at IS NOT NULL',
      [run],
    );
    return Number(rows[0]!.count);
  }

  /** How many attempts of `run` that started at `since` or later are running on `worker` (started, not finished). */
  async running(run: string, worker: string, since: number): Promise<number> {
    const { rows } = await this.pool.query<{ count: string }>(
      `SELECT count(*) AS count FROM queue_attempts
       WHERE run = $1 AND worker = $2 AND finished_at IS NULL AND started_at >= $3`,
      [run, worker, new Date(since)],
    );
    return Number(rows[0]!.count);
  }

  /** Every attempt of `run`, in the order they were recorded. */
  async attempts(run: string): Promise<Attempt[]> {
    const { rows } = await this.pool.query<Record<string, unknown>>(
      'SELECT * FROM queue_attempts WHERE run = $1 ORDER BY id',
      [run],
    );
    return rows.map((row) => ({
      id: Number(row['id']),
      jobId: String(row['job_id']),
      key: String(row['key']),
      seq: Number(row['seq']),
      attempt: Number(row['attempt']),
      scheduledAt: (row['scheduled_at'] as Date).getTime(),
      timeout: Number(row['timeout_ms']),
      worker: String(row['worker']),
      startedAt: (row['started_at'] as Date).getTime(),
      finishedAt: row['finished_at'] === null ? null : (row['finished_at'] as Date).getTime(),
      applied: row['applied'] === null ? null : Boolean(row['applied']),
    }));
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}

/**
 * Each attempt's start-to-close timeout: a job whose worker died is retried this long after its attempt started. Well
 * above what an attempt takes (JOB_MS plus two queries) even on a loaded machine, where a worker busy with workflow
 * tasks can take a second or more to run an activity it was handed and to report it: a live worker's attempt that
 * overruns it is retried too, which the checks must tell from a job run twice for no reason (see `REPORT_SLACK`).
 */
export const JOB_TIMEOUT = 5_000;

/**
 * Enqueues `jobsPerKey` applyEffect jobs on each key, one after the other per key (their order is the key's order) and
 * the keys in parallel, each with a JOB_TIMEOUT attempt timeout. A job is retried until it is done, 100 ms after an
 * attempt timed out: the cases kill workers while jobs run, so one job can lose several attempts in a row, and with the
 * default 5 attempts it would fail for good.
 */
export async function enqueueEffects(
  enqueue: Coordinator['enqueue'],
  run: string,
  keys: readonly string[],
  jobsPerKey: number,
  options: Pick<EnqueueOptions, 'rateLimit'> = {},
): Promise<void> {
  await Promise.all(
    keys.map(async (key) => {
      for (let seq = 0; seq < jobsPerKey; seq++) {
        const effect: Effect = { jobId: `${key}#${seq}`, key, seq };
        await enqueue(key, 'applyEffect', [run, effect], {
          ...options,
          jobId: effect.jobId,
          timeout: JOB_TIMEOUT,
          retry: { maximumAttempts: Infinity, initialInterval: 100, backoffCoefficient: 1 },
        });
      }
    }),
  );
}

/** What the test did to the workers and the server, by the wall clock (`Date.now()`, comparable with the workers'). */
export interface Disruptions {
  /** Worker processes the test ended, by name: when they were gone, and whether by SIGKILL (else SIGTERM). */
  readonly ended: ReadonlyMap<string, { readonly at: number; readonly killed: boolean }>;
  /**
   * Spans in which the server was down or moving its shards: an attempt that started before one ended may have its
   * completion lost (the server times the attempt out and retries it) even though its worker lives on.
   */
  readonly outages?: readonly { readonly from: number; readonly to: number }[];
}

/**
 * How long after an attempt finished its report may still be on its way to the server: the worker reports as soon as
 * the job returns (milliseconds); this allows for a loaded machine. A worker killed later than this after the attempt
 * finished, or an attempt that finished earlier than this before its timeout, cannot explain a re-run.
 */
const REPORT_SLACK = 2_000;

export interface AttemptSummary {
  readonly attempts: number;
  /** Attempts beyond one per job. */
  readonly reruns: number;
  /** Re-runs by why the attempt before was retried: its worker killed, its timeout overrun, a server outage. */
  readonly excuses: { readonly kill: number; readonly timeout: number; readonly outage: number };
  /** Attempts that found the job's effect already applied (an earlier attempt applied it, but did not report). */
  readonly alreadyApplied: number;
  /** Attempts cut short by a worker kill (they never finished). */
  readonly cutShort: number;
}

function describeAttempt(attempt: Attempt): string {
  return (
    `${attempt.jobId} attempt ${attempt.attempt} on ${attempt.worker} (scheduled ${attempt.scheduledAt}, ran ` +
    `${attempt.startedAt}..${attempt.finishedAt ?? '-'})`
  );
}

/** When an attempt stopped acting on the resource: when it finished, or when its worker was gone. */
function attemptEnd(attempt: Attempt, ended: Disruptions['ended']): number {
  return attempt.finishedAt ?? ended.get(attempt.worker)?.at ?? Infinity;
}

/**
 * Per key, the attempts of job k+1 that started before an attempt of job k stopped: two jobs of a key at once, or one
 * out of order. (Attempts of one job may overlap: a retry after a lost completion.)
 */
function misordered(
  byJob: ReadonlyMap<string, readonly Attempt[]>,
  keys: readonly string[],
  jobsPerKey: number,
  ended: Disruptions['ended'],
): string[] {
  const found: string[] = [];
  for (const key of keys) {
    for (let seq = 1; seq < jobsPerKey; seq++) {
      for (const later of byJob.get(`${key}#${seq}`) ?? []) {
        for (const earlier of byJob.get(`${key}#${seq - 1}`) ?? []) {
          if (later.startedAt < attemptEnd(earlier, ended)) {
            found.push(`${describeAttempt(later)} began before ${describeAttempt(earlier)} ended`);
          }
        }
      }
    }
  }
  return found;
}

/**
 * Why `earlier` may not have reported in time, so that `rerun` of its job is no bug: a job runs again only as
 * Temporal's retry of its activity (a greater attempt number: the workflow starts each job once), and only when
 * - the earlier attempt's worker was killed before the re-run (and, if the attempt finished, so soon after that its
 *   report may not have gone out);
 * - it finished less than REPORT_SLACK before its timeout ran out, or later: its timeout runs from when the server
 *   started it, no earlier than it was scheduled, so a report on a loaded machine may have come too late;
 * - a server outage overlaps the time between the two.
 */
function excuseFor(
  earlier: Attempt,
  rerun: Attempt,
  { ended, outages = [] }: Disruptions,
): keyof AttemptSummary['excuses'] | undefined {
  if (rerun.attempt > earlier.attempt) {
    const death = ended.get(earlier.worker);
    const killedFirst = death?.killed === true && death.at <= rerun.startedAt;
    if (killedFirst && (earlier.finishedAt === null || death.at - earlier.finishedAt <= REPORT_SLACK)) return 'kill';
    if ((earlier.finishedAt ?? Infinity) + REPORT_SLACK >= earlier.scheduledAt + JOB_TIMEOUT) return 'timeout';
  }
  if (outages.some((span) => span.from <= rerun.startedAt && span.to >= earlier.startedAt)) return 'outage';
  return undefined;
}

/** The re-runs no kill, timeout overrun or outage explains, and how many each excuse explains. */
function checkReruns(byJob: ReadonlyMap<string, readonly Attempt[]>, disruptions: Disruptions) {
  const unexcused: string[] = [];
  const excuses = { kill: 0, timeout: 0, outage: 0 };
  for (const jobAttempts of byJob.values()) {
    for (const [i, rerun] of jobAttempts.entries()) {
      for (const earlier of jobAttempts.slice(0, i)) {
        const excuse = excuseFor(earlier, rerun, disruptions);
        if (excuse && earlier === jobAttempts[i - 1]) excuses[excuse]++;
        if (excuse) continue;
        const death = disruptions.ended.get(earlier.worker);
        const state = death ? `${death.killed ? 'killed' : 'stopped'} at ${death.at}` : 'alive';
        unexcused.push(`${describeAttempt(rerun)} after ${describeAttempt(earlier)}, its worker ${state}`);
      }
    }
  }
  return { unexcused, excuses };
}

/**
 * Checks the raw record of a queue run: every job done, each key's jobs one at a time in enqueue order, a job run again
 * only when its earlier attempt's worker was killed (or the server failed) before the re-run, and the effects table
 * holding every job's effect.
 */
export function checkAttempts(
  t: ExecutionContext,
  attempts: readonly Attempt[],
  applied: readonly Effect[],
  keys: readonly string[],
  jobsPerKey: number,
  disruptions: Disruptions,
): AttemptSummary {
  const byJob = new Map<string, Attempt[]>();
  for (const attempt of attempts) byJob.set(attempt.jobId, [...(byJob.get(attempt.jobId) ?? []), attempt]);
  for (const jobAttempts of byJob.values()) jobAttempts.sort((a, b) => a.startedAt - b.startedAt);
  const jobIds = keys.flatMap((key) => Array.from({ length: jobsPerKey }, (_, seq) => `${key}#${seq}`));
  const enqueued = new Set(jobIds);

  t.deepEqual(
    jobIds.filter((jobId) => !byJob.get(jobId)?.some((attempt) => attempt.finishedAt !== null)),
    [],
    'every job has a finished attempt',
  );
  t.deepEqual(
    [...byJob.keys()].filter((jobId) => !enqueued.has(jobId)),
    [],
    'no attempt of a job that was never enqueued',
  );
  // The timeout it was enqueued with, which the re-run check relies on.
  t.deepEqual(
    attempts.filter((attempt) => attempt.timeout !== JOB_TIMEOUT).map(describeAttempt),
    [],
    "every attempt ran with its job's timeout",
  );
  t.deepEqual(
    attempts.filter((attempt) => attemptEnd(attempt, disruptions.ended) === Infinity).map(describeAttempt),
    [],
    'every attempt finished, unless its worker was killed or stopped',
  );
  t.deepEqual(
    misordered(byJob, keys, jobsPerKey, disruptions.ended),
    [],
    "each key's jobs ran one at a time, in enqueue order",
  );
  const { unexcused, excuses } = checkReruns(byJob, disruptions);
  t.deepEqual(unexcused, [], 'a job ran again only after its worker was killed, never twice by a live worker');
  const appliedIds = applied.map((effect) => effect.jobId);
  t.deepEqual([...new Set(appliedIds)].sort(), [...jobIds].sort(), "the effects table holds every job's effect");

  return {
    attempts: attempts.length,
    reruns: attempts.length - byJob.size,
    excuses,
    alreadyApplied: attempts.filter((attempt) => attempt.applied === false).length,
    cutShort: attempts.filter((attempt) => attempt.finishedAt === null).length,
  };
}
