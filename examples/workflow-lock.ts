/**
 * Locks and queues from workflow code: `transfer` workflows (in workflows/transfer.ts) lock accounts with `withLock`
 * from 'temporal-coordination/workflows' while a plain service locks the same account with `withLock` from
 * 'temporal-coordination': one lock, one queue of waiters, one sequence of fencing tokens.
 *
 *   npm run example -- workflow-lock
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { configure, withLock } from 'temporal-coordination';
import { createWorker } from 'temporal-coordination/worker';
import type { BankActivities, transfer } from './workflows/transfer.js';

Runtime.install({ logger: new DefaultLogger('WARN') });
const start = performance.now();
const at = () => `${((performance.now() - start) / 1000).toFixed(2).padStart(5)} s`;

// The bank: balances and, per account, the highest fencing token a write has carried. A read-modify-write like
// `transfer`'s loses updates unless one writer at a time holds the account's lock.
const balances = new Map([
  ['alice', 100],
  ['bob', 0],
]);
const lastToken = new Map<string, number>();
const bank: BankActivities = {
  async readBalance(account) {
    await sleep(100); // a slow read widens the window a second writer would race into
    return balances.get(account) ?? 0;
  },
  async writeBalance(account, balance, fencingToken) {
    if (fencingToken <= (lastToken.get(account) ?? 0)) throw new Error(`stale fencing token ${fencingToken}`);
    lastToken.set(account, fencingToken);
    balances.set(account, balance);
  },
};

// Everything connects from the environment (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, ...), as any Temporal tool does.
const { connectionOptions, namespace = 'default' } = loadClientConnectConfig();
const client = new Client({ connection: await Connection.connect(connectionOptions), namespace });
configure({ client }); // the module-level `withLock` below uses this client too

// 1. Your own worker, on your own task queue: your workflows (which import 'temporal-coordination/workflows') and
//    your activities, as usual.
const bankWorker = await Worker.create({
  connection: await NativeConnection.connect(connectionOptions),
  namespace,
  taskQueue: 'bank',
  workflowsPath: fileURLToPath(new URL('./workflows/transfer.ts', import.meta.url)),
  activities: bank,
});

// 2. The coordination worker: the lock and queue workflows, the activities through which workflows reach them, and
//    the queue jobs. Here in-process; anywhere in the cluster in production (see worker.ts).
const notified: string[] = [];
const coordinationWorker = await createWorker({
  jobs: {
    async notify(customer: string, message: string) {
      notified.push(message);
      console.log(`${at()}  notify ${customer}: ${message}`);
    },
  },
});

await coordinationWorker.runUntil(
  bankWorker.runUntil(async () => {
    // 3. A client starts three transfers out of alice's account at once...
    const batch = Date.now().toString(36);
    const transfers = [10, 20, 30].map(async (amount) => {
      const token = await client.workflow.execute<typeof transfer>('transfer', {
        workflowId: `transfer-${batch}-${amount}`,
        taskQueue: 'bank',
        args: ['alice', 'bob', amount],
      });
      console.log(`${at()}  transfer of ${amount} done; it debited alice with fencing token ${token}`);
      return token;
    });
    // ...while a plain service deposits into the same account, under the same lock.
    const deposit = withLock('account:alice', async (lease) => {
      const balance = await bank.readBalance('alice');
      await bank.writeBalance('alice', balance + 5, lease.token);
      console.log(`${at()}  service deposited 5 into alice with fencing token ${lease.token}`);
      return lease.token;
    });
    const tokens = [...(await Promise.all(transfers)), await deposit];
    while (notified.length < transfers.length) await sleep(50);

    const [alice, bob] = [balances.get('alice'), balances.get('bob')];
    console.log(`balances: alice ${alice}, bob ${bob}`);
    console.log(`no update lost: ${alice === 100 - 60 + 5 && bob === 60 ? 'yes' : 'NO'}`);
    console.log(`one token per holder of account:alice: ${new Set(tokens).size === tokens.length ? 'yes' : 'NO'}`);
  }),
);
await client.connection.close();
