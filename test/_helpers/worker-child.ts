// The body of a worker that runs in a child process, so a test can SIGKILL it: connects to TEMPORAL_ADDRESS, polls
// TASK_QUEUE with the coordination workflows and the given jobs, prints `ready` once it polls, and stops on SIGTERM.
import { NativeConnection } from '@temporalio/worker';
import { createWorker, type CreateWorkerOptions } from '../../lib/worker.js';
import { quietRuntime, workflowBundle } from './temporal.js';

export async function runChildWorker(jobs: NonNullable<CreateWorkerOptions['jobs']>): Promise<void> {
  const { TEMPORAL_ADDRESS: address, TASK_QUEUE: taskQueue } = process.env;
  if (!address || !taskQueue) throw new Error('TEMPORAL_ADDRESS and TASK_QUEUE are required');
  quietRuntime(process.env['WORKER'] ? `worker-child-${process.env['WORKER']}` : 'worker-child');
  const connection = await NativeConnection.connect({ address });
  const bundle = workflowBundle();
  const worker = await createWorker({
    ...(bundle ? { workflowBundle: bundle } : {}),
    connection,
    namespace: process.env['TEMPORAL_NAMESPACE'] ?? 'default',
    taskQueue,
    // A killed worker cannot hand its cached workflows back: let the server move them to the next worker after 1 s
    // rather than the default 10 s (a workflow task the killed worker had started still waits for its 10 s timeout).
    stickyQueueScheduleToStartTimeout: '1s',
    jobs,
  });
  const running = worker.run();
  process.stdout.write('ready\n');
  process.once('SIGTERM', () => worker.shutdown());
  await running;
  await connection.close();
}
