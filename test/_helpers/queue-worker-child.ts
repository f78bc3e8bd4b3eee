// A worker in a child process, so a test can SIGKILL it mid-job. Every job attempt logs `start <id> <attempt>` and
// `end <id>` to QUEUE_LOG. Usage: node --import tsx queue-worker-child.ts (TEMPORAL_ADDRESS, TASK_QUEUE, QUEUE_LOG).
import { appendFileSync } from 'node:fs';
import { Context } from '@temporalio/activity';
import { NativeConnection } from '@temporalio/worker';
import { createWorker } from '../../lib/worker.js';
import { workflowBundle } from './temporal.js';

const { TEMPORAL_ADDRESS: address, TASK_QUEUE: taskQueue, QUEUE_LOG: log } = process.env;
if (!address || !taskQueue || !log) throw new Error('TEMPORAL_ADDRESS, TASK_QUEUE and QUEUE_LOG are required');

const connection = await NativeConnection.connect({ address });
const bundle = workflowBundle();
const worker = await createWorker({
  ...(bundle ? { workflowBundle: bundle } : {}),
  connection,
  namespace: process.env['TEMPORAL_NAMESPACE'] ?? 'default',
  taskQueue,
  // A killed worker cannot hand its cached workflows back: let the server move them to another worker quickly.
  stickyQueueScheduleToStartTimeout: '1s',
  jobs: {
    async step(id: string, ms: number) {
      appendFileSync(log, `start ${id} ${Context.current().info.attempt}\n`);
      await new Promise((resolve) => setTimeout(resolve, ms));
      appendFileSync(log, `end ${id}\n`);
      return id;
    },
  },
});
const running = worker.run();
process.stdout.write('ready\n');
process.once('SIGTERM', () => worker.shutdown());
await running;
await connection.close();
