/**
 * `redis-lock` (baseline): `SET key token NX PX ttl` polled every 2 ms, released by a compare-and-delete Lua script,
 * one connection per contender, at the contention levels of `lock-contention`'s quick run. Skipped, with a note, where
 * Redis is not reachable.
 * @module
 */
import { connectRedis, POLL_INTERVAL, RedisLock, redisUrl } from '../baselines/redis-lock.js';
import { defineScenario } from '../scenario.js';
import { runBaseline } from './_baseline.js';

export default defineScenario({
  name: 'redis-lock',
  description:
    `Baseline: Redis SET NX PX with ${POLL_INTERVAL} ms polling and a compare-and-delete release, 1/8/32 contenders ` +
    'on their own connections, empty critical section (skipped if Redis is unreachable).',
  async run(ctx) {
    await runBaseline(ctx, {
      name: 'redis-lock',
      server: `Redis at ${redisUrl}`,
      probe: async () => {
        const redis = await connectRedis();
        await redis.quit();
      },
      connect: (level) => RedisLock.connect(`bench:${level}`),
      note: `waiters poll every ${POLL_INTERVAL} ms: no queue, so the releaser may take the lock straight back; no fencing token`,
    });
  },
});
