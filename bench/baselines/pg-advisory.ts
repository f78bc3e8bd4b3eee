/**
 * Baseline: PostgreSQL session-level advisory locks. `pg_advisory_lock(key)` blocks in the server until the lock is
 * free (waiters queue in PostgreSQL's lock manager); `pg_advisory_unlock(key)` frees it. One connection per
 * contender, as separate processes would have. No fencing token: a holder whose connection dies loses the lock
 * without knowing.
 * @module
 */
import pg from 'pg';
import type { BaselineLock } from './baseline.js';

/** Where the baseline's PostgreSQL is: `BENCH_POSTGRES_URL`, else the local test database. */
export const postgresUrl = process.env['BENCH_POSTGRES_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';

/** Connects one client, failing fast (2 s) when the server is not there. */
export async function connectPostgres(): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: postgresUrl, connectionTimeoutMillis: 2_000 });
  // A connection dropped mid-run surfaces on the next query; without a listener it would crash the process.
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => {});
    throw error;
  }
  return client;
}

export class PgAdvisoryLock implements BaselineLock {
  readonly fenced = false;

  private constructor(
    private readonly client: pg.Client,
    private readonly key: number,
  ) {}

  /** A contender on its own connection, for the advisory lock `key`. */
  static async connect(key: number): Promise<PgAdvisoryLock> {
    return new PgAdvisoryLock(await connectPostgres(), key);
  }

  async acquire(): Promise<undefined> {
    await this.client.query('SELECT pg_advisory_lock($1)', [this.key]);
    return undefined;
  }

  async release(): Promise<void> {
    const { rows } = await this.client.query<{ released: boolean }>('SELECT pg_advisory_unlock($1) AS released', [
      this.key,
    ]);
    if (rows[0]?.released !== true) throw new Error(`pg_advisory_unlock(${this.key}) found the lock not held`);
  }

  async close(): Promise<void> {
    await this.client.end();
  }
}
