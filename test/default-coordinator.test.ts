import test from 'ava';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { configure, defaultCoordinator, lockStatus, withLock } from '../lib/index.js';
import { DEFAULT_TASK_QUEUE } from '../lib/context.js';
import { createWorker } from '../lib/worker.js';
import { quietRuntime, serverAddress, workflowBundle } from './_helpers/temporal.js';

// The module-level functions, as a user calls them: connected from TEMPORAL_ADDRESS, on the default task queue.
test('the module-level functions connect from the environment and use the default task queue', async (t) => {
  quietRuntime('default-coordinator');
  const { address, namespace } = serverAddress();
  const connection = await NativeConnection.connect({ address });
  const bundle = workflowBundle();
  const worker = await createWorker({ connection, namespace, ...(bundle ? { workflowBundle: bundle } : {}) });
  t.is(worker.options.taskQueue, DEFAULT_TASK_QUEUE);
  await worker.runUntil(async () => {
    const id = `default-${Math.random()}`;
    t.is(await withLock(id, (lease) => typeof lease.token), 'number');
    t.deepEqual((await lockStatus(id)).holders, []);

    // configure() replaces the coordinator behind them.
    const client = new Client({ connection: await Connection.connect({ address }), namespace });
    configure({ client, idPrefix: 'configured/' });
    const configured = defaultCoordinator();
    t.is(await configured.withLock(id, () => 'configured'), 'configured');
    t.true((await client.workflow.getHandle(`configured/lock:${id}`).describe()).workflowId.startsWith('configured/'));
    await client.connection.close();
  });
  await connection.close();
});
