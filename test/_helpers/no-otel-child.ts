// Run by test/telemetry.test.ts with `@opentelemetry/api` made unresolvable (no-otel.cjs): a lock and a job work as
// usual, and the telemetry says it is disabled.
import { createCoordinator } from '../../lib/index.js';
import { Telemetry } from '../../lib/telemetry.js';
import { startTestEnv } from './temporal.js';

const env = await startTestEnv('no-otel', {
  jobs: {
    async ran(n: number) {
      return `ran ${n}`;
    },
  },
});
try {
  console.log(`telemetry enabled: ${Telemetry.create().enabled}`);
  const { withLock, enqueue } = createCoordinator({ client: env.client, taskQueue: env.taskQueue });
  console.log(`withLock token: ${await withLock(env.id('invoice:1'), (lease) => lease.token)}`);
  const job = await enqueue(env.id('customer:1'), 'ran', [1]);
  console.log(`job result: ${await job.result()}`);
} finally {
  await env.teardown();
}
