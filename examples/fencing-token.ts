/**
 * Fencing tokens: a lease can be lost while its holder still runs (a long GC pause, a partition, a stopped VM), and a
 * paused holder cannot react to `lease.signal`. So the protected resource, here a PostgreSQL row, checks the token:
 * it refuses a write whose token is not greater than the last one it accepted.
 *
 *   npm run example -- fencing-token
 *
 * PostgreSQL: DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import pg from 'pg';
import { acquire, withLock } from 'temporal-coordination';
import { createWorker } from 'temporal-coordination/worker';

const databaseUrl = process.env['DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
const db = new pg.Pool({ connectionString: databaseUrl, connectionTimeoutMillis: 5_000 });
try {
  await db.query(`CREATE TABLE IF NOT EXISTS fencing_example_accounts (
    id text PRIMARY KEY,
    balance integer NOT NULL,
    fencing_token bigint NOT NULL DEFAULT 0
  )`);
} catch (error) {
  console.error(`PostgreSQL is not reachable at ${databaseUrl} (set DATABASE_URL): ${(error as Error).message}`);
  process.exit(1);
}
await db.query(
  `INSERT INTO fencing_example_accounts (id, balance) VALUES ('account-7', 100)
   ON CONFLICT (id) DO UPDATE SET balance = 100, fencing_token = 0`,
);

async function readBalance(): Promise<number> {
  const { rows } = await db.query<{ balance: number }>(
    `SELECT balance FROM fencing_example_accounts WHERE id = 'account-7'`,
  );
  return rows[0]!.balance;
}

/** The fenced write: applied only if `token` is newer than every token the row has accepted before. */
async function writeBalance(balance: number, token: number): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE fencing_example_accounts SET balance = $1, fencing_token = $2
     WHERE id = 'account-7' AND fencing_token < $2`,
    [balance, token],
  );
  return rowCount === 1;
}

Runtime.install({ logger: new DefaultLogger('WARN') });
// The coordination workflows need a worker somewhere (see worker.ts); this one runs in-process.
const worker = await createWorker();

await worker.runUntil(async () => {
  const start = performance.now();
  const at = () => `${((performance.now() - start) / 1000).toFixed(2).padStart(5)} s`;
  console.log(`${at()}  account-7 balance: ${await readBalance()}`);

  // Holder A: a short lease it does not renew, then a 4 s stall (think: a stop-the-world GC pause) mid-update.
  const a = await acquire('account:7', { ttl: '2s', autoRenew: false });
  console.log(`${at()}  A holds account:7 with token ${a.token}; withdraws 30`);
  const aRead = await readBalance();
  const aStalled = sleep(4_000);

  // Holder B asks meanwhile; it is granted once A's lease lapses, and withdraws 50.
  const b = withLock('account:7', async (lease) => {
    const balance = await readBalance();
    const applied = await writeBalance(balance - 50, lease.token);
    console.log(
      `${at()}  B holds account:7 with token ${lease.token}: ${balance} - 50 -> ${applied ? 'written' : 'REFUSED'}`,
    );
  });

  await aStalled;
  // A wakes up. Its lease is gone (lease.signal says so), but a paused process can lose its lease between checking
  // and writing: that is why the row checks the token.
  const lost = a.signal.aborted ? (a.signal.reason as Error).message : 'no';
  console.log(`${at()}  A wakes up; lease lost: ${lost}`);
  const applied = await writeBalance(aRead - 30, a.token);
  console.log(
    `${at()}  A writes ${aRead} - 30 with token ${a.token} -> ${applied ? 'written' : 'refused (a newer token wrote)'}`,
  );
  await a.release(); // no effect on anyone: A's lease was already taken over
  await b;

  const balance = await readBalance();
  console.log(
    `${at()}  account-7 balance: ${balance} (100 - 50: B's withdrawal kept${balance === 50 ? '' : ', WRONG'})`,
  );
  console.log(`without the token check, A's late write would have set it to ${aRead - 30} and lost B's withdrawal`);
});
await db.end();
