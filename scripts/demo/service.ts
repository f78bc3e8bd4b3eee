// One "service process" of the demo: a separate Node process, a plain Temporal client with no worker of its own,
// doing read-modify-write on the shared resource. The demo starts several, gives them tasks (JSON lines on stdin) and
// reads their events (JSON lines on stdout). The process ends when its stdin does.
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection } from '@temporalio/client';
import { createCoordinator, retryInterceptors, type Coordinator } from '../../lib/index.js';
import { FREEZE, STALE_TTL, type ServiceConfig, type ServiceEvent, type ServiceTask } from './protocol.js';
import { openResource, type SharedResource } from './resource.js';

const emit = (event: ServiceEvent) => process.stdout.write(`${JSON.stringify(event)}\n`);

/** Stops the whole process, timers and all, as a stop-the-world GC pause or a suspended VM would. */
function freeze(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

async function perform(task: ServiceTask, { withLock, acquire }: Coordinator, resource: SharedResource) {
  const { key, lockId, amount } = task;
  const increment = async () => {
    const { value } = await resource.read(key);
    await sleep(task.workTime);
    await resource.write(key, value + 1);
    emit({ type: 'increment', from: value });
  };
  switch (task.kind) {
    case 'unlocked-counter':
      for (let i = 0; i < amount; i++) await increment();
      break;
    case 'locked-counter':
      for (let i = 0; i < amount; i++) await withLock(lockId, increment);
      break;
    case 'stale-holder': {
      const lease = await acquire(lockId, { ttl: STALE_TTL, autoRenew: false });
      lease.signal.addEventListener('abort', () =>
        emit({ type: 'lease-lost', message: (lease.signal.reason as Error).message }),
      );
      const { value } = await resource.read(key);
      emit({ type: 'granted', token: lease.token, value });
      emit({ type: 'frozen', ms: FREEZE });
      freeze(FREEZE);
      // Straight on to the write, as the code would after a pause it never noticed.
      emit({ type: 'woke', leaseAborted: lease.signal.aborted });
      const applied = await resource.fencedWrite(key, value + amount, lease.token);
      emit({ type: 'wrote', value: value + amount, token: lease.token, applied });
      await lease.release();
      break;
    }
    case 'late-holder':
      await withLock(lockId, async (lease) => {
        const { value } = await resource.read(key);
        emit({ type: 'granted', token: lease.token, value });
        const applied = await resource.fencedWrite(key, value + amount, lease.token);
        emit({ type: 'wrote', value: value + amount, token: lease.token, applied });
      });
      break;
  }
}

const config = JSON.parse(process.env['DEMO_SERVICE'] ?? '') as ServiceConfig;
const connection = await Connection.connect({ address: config.address, interceptors: retryInterceptors() });
const coordinator = createCoordinator({
  client: new Client({ connection, namespace: config.namespace }),
  taskQueue: config.taskQueue,
});
const resource = await openResource(config.resource);
emit({ type: 'ready' });
for await (const line of createInterface({ input: process.stdin })) {
  try {
    await perform(JSON.parse(line) as ServiceTask, coordinator, resource);
    emit({ type: 'done' });
  } catch (error) {
    emit({ type: 'error', message: error instanceof Error ? `${error.name}: ${error.message}` : String(error) });
  }
}
await resource.close();
await connection.close();
