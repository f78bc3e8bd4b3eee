/**
 * Workflow code of the workflow-lock example (see ../workflow-lock.ts). It runs in Temporal's workflow sandbox, so it
 * imports only from `temporal-coordination/workflows` and `@temporalio/workflow`.
 */
import { proxyActivities } from '@temporalio/workflow';
import { enqueue, withLock } from 'temporal-coordination/workflows';

/** The bank's activities, implemented in ../workflow-lock.ts. */
export interface BankActivities {
  readBalance(account: string): Promise<number>;
  /** Refuses a write whose fencing token is not greater than the last one the account accepted. */
  writeBalance(account: string, balance: number, fencingToken: number): Promise<void>;
}

const { readBalance, writeBalance } = proxyActivities<BankActivities>({ startToCloseTimeout: '10s' });

/** Moves `amount` from one account to another; each account is read and written only while its lock is held. */
export async function transfer(from: string, to: string, amount: number): Promise<number> {
  // The lock is the same one plain services take with `withLock` from 'temporal-coordination'.
  const token = await withLock(
    `account:${from}`,
    async (lease) => {
      const balance = await readBalance(from);
      await writeBalance(from, balance - amount, lease.token);
      return lease.token;
    },
    { ttl: '1m' },
  );
  await withLock(`account:${to}`, async (lease) => {
    const balance = await readBalance(to);
    await writeBalance(to, balance + amount, lease.token);
  });
  // One customer's notifications run one at a time, in order, on the coordination worker (`jobs.notify`).
  await enqueue(`customer:${to}`, 'notify', [to, `received ${amount} from ${from}`]);
  return token;
}
