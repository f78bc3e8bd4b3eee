// The queue fault case's protected resource: a PostgreSQL table of job effects keyed by job ID, so a job attempt that
// runs again after its worker died applies nothing twice. Every attempt is logged too, to show the kills landed
// mid-job. Same database as the fence (see fence.ts).
import type { ExecutionContext } from 'ava';
import pg from 'pg';
import type { Coordinator } from '../../../lib/index.js';
import { connectionConfig, createSchema, DATABASE } from './fence.js';

export interface Effect {
  readonly jobId: string;
  readonly key: string;
  readonly seq: number;
}

/** Creates the effects and attempts tables once. */
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
      );`,
  );
}

export class Effects {
  private constructor(private readonly pool: pg.Pool) {}

  static open(): Effects {
    return new Effects(new pg.Pool({ ...connectionConfig(DATABASE), max: 8 }));
  }

  async attempt(run: string, jobId: string, attempt: number): Promise<void> {
    await this.pool.query('INSERT INTO queue_attempts (run, job_id, attempt) VALUES ($1, $2, $3)', [
      run,
      jobId,
      attempt,
    ]);
  }

  /** Applies a job's effect unless it already was: the dedup a real consumer of an at-least-once queue does. */
  async apply(run: string, effect: Effect): Promise<void> {
    await this.pool.query(
      'INSERT INTO queue_effects (run, job_id, key, seq) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING',
      [run, effect.jobId, effect.key, effect.seq],
    );
  }

  /** The effects of `run` in the order they were applied. */
  async applied(run: string): Promise<Effect[]> {
    const { rows } = await this.pool.query<{ job_id: string; key: string; seq: number }>(
      'SELECT job_id, key, seq FROM queue_effects WHERE run = $1 ORDER BY id',
      [run],
    );
    return rows.map((row) => ({ jobId: row.job_id, key: row.key, seq: row.seq }));
  }

  async attempts(run: string): Promise<number> {
    const { rows } = await this.pool.query<{ count: string }>(
      'SELECT count(*) AS count FROM queue_attempts WHERE run = $1',
      [run],
    );
    return Number(rows[0]!.count);
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}

/**
 * Enqueues `jobsPerKey` applyEffect jobs on each key, one after the other per key (their order is the key's order) and
 * the keys in parallel. A 2 s attempt timeout: a job whose worker died is retried 2 s after its attempt started.
 */
export async function enqueueEffects(
  enqueue: Coordinator['enqueue'],
  run: string,
  keys: readonly string[],
  jobsPerKey: number,
): Promise<void> {
  await Promise.all(
    keys.map(async (key) => {
      for (let seq = 0; seq < jobsPerKey; seq++) {
        const effect: Effect = { jobId: `${key}#${seq}`, key, seq };
        await enqueue(key, 'applyEffect', [run, effect], { jobId: effect.jobId, timeout: '2s' });
      }
    }),
  );
}

/** Every job applied its effect exactly once, and each key's effects landed in enqueue order. */
export function checkEffects(
  t: ExecutionContext,
  applied: readonly Effect[],
  keys: readonly string[],
  jobsPerKey: number,
): void {
  t.is(applied.length, keys.length * jobsPerKey, 'every job applied its effect');
  t.is(new Set(applied.map((effect) => effect.jobId)).size, applied.length, 'no effect applied twice');
  for (const key of keys) {
    const order = applied.filter((effect) => effect.key === key).map((effect) => effect.seq);
    t.deepEqual(
      order,
      Array.from({ length: jobsPerKey }, (_, seq) => seq),
      `${key}: effects in enqueue order`,
    );
  }
}
