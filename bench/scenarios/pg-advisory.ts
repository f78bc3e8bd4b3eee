/**
 * `pg-advisory` (baseline): `pg_advisory_lock` / `pg_advisory_unlock` on PostgreSQL, one connection per contender, at
 * the contention levels of `lock-contention`'s quick run. Skipped, with a note, where PostgreSQL is not reachable.
 * @module
 */
import { randomInt } from 'node:crypto';
import { connectPostgres, PgAdvisoryLock, postgresUrl } from '../baselines/pg-advisory.js';
import { defineScenario } from '../scenario.js';
import { runBaseline } from './_baseline.js';

export default defineScenario({
  name: 'pg-advisory',
  description:
    'Baseline: PostgreSQL pg_advisory_lock/pg_advisory_unlock, 1/8/32 contenders on their own connections, empty ' +
    'critical section (skipped if PostgreSQL is unreachable).',
  async run(ctx) {
    // Advisory lock keys are global to the database: a random one per level keeps concurrent bench runs apart.
    const keys = new Map<string, number>();
    await runBaseline(ctx, {
      name: 'pg-advisory',
      server: `PostgreSQL at ${postgresUrl}`,
      probe: async () => {
        const client = await connectPostgres();
        await client.end();
      },
      connect: (level) => {
        let key = keys.get(level);
        if (key === undefined) keys.set(level, (key = randomInt(2 ** 31 - 1)));
        return PgAdvisoryLock.connect(key);
      },
      room: async () => {
        const client = await connectPostgres();
        try {
          const { rows } = await client.query<{ room: number }>(
            `SELECT current_setting('max_connections')::int - count(*)::int AS room
               FROM pg_stat_activity WHERE backend_type = 'client backend'`,
          );
          return rows[0]?.room;
        } finally {
          await client.end();
        }
      },
      note: 'waiters block in the server (its lock manager queues them); no fencing token',
    });
  },
});
