// Semaphore contenders in a child process, so a test can run them in many processes at once, as users do. Each of
// COORDINATORS contenders has a connection and coordinator of its own and runs ROUNDS critical sections of SECTION_MS
// with withSemaphore(RESOURCE, LIMIT). Every gRPC status an UpdateWorkflowExecution call returns other than OK is
// recorded below the retries (which would hide it). Prints one JSON line when done:
// `{ sections: [{ token, start, end, valid }], updateFailures: [code...], errors: [message...] }`, times by Date.now()
// (one clock for every process on the machine).
// Usage: node --import tsx semaphore-contenders.ts (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TASK_QUEUE, RESOURCE, LIMIT,
// COORDINATORS, ROUNDS, SECTION_MS).
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection, makeGrpcRetryInterceptor } from '@temporalio/client';
import { createCoordinator, retryInterceptors, type Lease } from '../../../lib/index.js';
import { requiredEnv } from './client.js';

const [resource, taskQueue, address] = [
  requiredEnv('RESOURCE'),
  requiredEnv('TASK_QUEUE'),
  requiredEnv('TEMPORAL_ADDRESS'),
];
const [limit, coordinators, rounds, sectionMs] = ['LIMIT', 'COORDINATORS', 'ROUNDS', 'SECTION_MS'].map((name) =>
  Number(requiredEnv(name)),
) as [number, number, number, number];

const updateFailures: number[] = [];
const recordUpdateFailures = (...[options, nextCall]: Parameters<ReturnType<typeof makeGrpcRetryInterceptor>>) => {
  const update = options.method_definition.path.endsWith('/UpdateWorkflowExecution');
  return makeGrpcRetryInterceptor({
    retryableDecider: (_attempt, status) => {
      if (update && status.code !== 0) updateFailures.push(status.code);
      return false;
    },
    delayFunction: () => 0,
  })(options, nextCall);
};

/** Whether the lease still says it is valid, by its own signal and clock. */
const valid = (lease: Lease) => !lease.signal.aborted && Date.now() < lease.expiresAt.getTime();

const sections: { token: number; start: number; end: number; valid: boolean }[] = [];
const errors: string[] = [];
await Promise.all(
  Array.from({ length: coordinators }, async () => {
    const connection = await Connection.connect({
      address,
      interceptors: [...retryInterceptors(), recordUpdateFailures],
    });
    const client = new Client({ connection, namespace: process.env['TEMPORAL_NAMESPACE'] ?? 'default' });
    const { withSemaphore } = createCoordinator({ client, taskQueue });
    try {
      for (let round = 0; round < rounds; round++) {
        await withSemaphore(resource, limit, async (lease) => {
          const start = Date.now();
          const validAtStart = valid(lease);
          await sleep(sectionMs);
          sections.push({ token: lease.token, start, end: Date.now(), valid: validAtStart && valid(lease) });
        });
      }
    } catch (error) {
      errors.push(String(error));
    } finally {
      await connection.close();
    }
  }),
);
process.stdout.write(JSON.stringify({ sections, updateFailures, errors }) + '\n');
