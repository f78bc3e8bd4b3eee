// The soak run's worker (see soak.ts), in a process of its own so its memory can be sampled alone. Prints `ready` once
// it polls; stops on SIGTERM. Usage: tsx scripts/soak-worker.ts (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TASK_QUEUE).
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { createWorker } from '../lib/worker.js';

const { TEMPORAL_ADDRESS: address, TASK_QUEUE: taskQueue } = process.env;
if (!address || !taskQueue) throw new Error('TEMPORAL_ADDRESS and TASK_QUEUE are required');
Runtime.install({ logger: new DefaultLogger('WARN') });
const connection = await NativeConnection.connect({ address });
const worker = await createWorker({ connection, namespace: process.env['TEMPORAL_NAMESPACE'] ?? 'default', taskQueue });
const running = worker.run();
process.stdout.write('ready\n');
process.once('SIGTERM', () => worker.shutdown());
await running;
await connection.close();
