/**
 * Baseline: the single-instance Redis lock pattern. Acquire is `SET key token NX PX ttl`, polled every 2 ms until it
 * succeeds (there is no queue: whoever polls first after a release wins); release deletes the key only if it still
 * holds this holder's token (a compare-and-delete Lua script), so an expired holder cannot free its successor's lock.
 * One connection per contender. The token is random, not a fencing token.
 * @module
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { Redis } from 'ioredis';
import type { BaselineLock } from './baseline.js';

/** Where the baseline's Redis is: `BENCH_REDIS_URL`, else the local server. */
export const redisUrl = process.env['BENCH_REDIS_URL'] ?? 'redis://127.0.0.1:6379';

/** Delay between two `SET NX` attempts while the lock is taken. */
export const POLL_INTERVAL = 2;
/** Lease of a holder that dies: the key expires after this long. */
const TTL = 30_000;

const compareAndDelete = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

/** Connects one client, failing fast (no reconnect loop, no offline queue) when the server is not there. */
export async function connectRedis(): Promise<Redis> {
  const redis = new Redis(redisUrl, {
    lazyConnect: true,
    connectTimeout: 2_000,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  // Errors surface on the failing command; without a listener ioredis prints every one. The first one says why a
  // connection failed (connect() itself only says it is closed).
  let cause: unknown;
  redis.on('error', (error: unknown) => {
    cause ??= error;
  });
  try {
    await redis.connect();
  } catch (error) {
    redis.disconnect();
    throw cause ?? error;
  }
  return redis;
}

export class RedisLock implements BaselineLock {
  readonly fenced = false;
  private token: string | undefined;

  private constructor(
    private readonly redis: Redis,
    private readonly key: string,
  ) {}

  /** A contender on its own connection, for the lock stored at `key`. */
  static async connect(key: string): Promise<RedisLock> {
    return new RedisLock(await connectRedis(), key);
  }

  async acquire(): Promise<undefined> {
    const token = randomUUID();
    while ((await this.redis.set(this.key, token, 'PX', TTL, 'NX')) !== 'OK') await delay(POLL_INTERVAL);
    this.token = token;
    return undefined;
  }

  async release(): Promise<void> {
    const deleted = await this.redis.eval(compareAndDelete, 1, this.key, this.token ?? '');
    this.token = undefined;
    if (deleted !== 1) throw new Error(`The Redis lock ${this.key} was no longer held by this holder`);
  }

  async close(): Promise<void> {
    await this.redis.quit();
  }
}
