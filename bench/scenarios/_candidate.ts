/**
 * One election candidate in a child process of `leader-failover`, run with `node --import tsx`. It connects to the
 * bench's server, campaigns on ELECTION with VALUE and TTL (ms) against the bench's worker on TASK_QUEUE, and reports
 * on stdout, one JSON line each: `{"queued":true}` once its candidacy has reached the server (a candidate queued later
 * leads after it), `{"leading":true,"term":N}` once it leads, and `{"lost":true,"term":N,"reason":"..."}` should it
 * lose its leadership while alive. It leads, renewing, until it is killed. When its stdin closes (the bench is done
 * with it, or died) it withdraws its candidacy or resigns, and exits.
 *
 * Environment: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TASK_QUEUE, ELECTION, VALUE, TTL.
 * @module
 */
import { once } from 'node:events';
import { Client, Connection, type WorkflowClientInterceptor } from '@temporalio/client';
import { createCoordinator, retryInterceptors } from '../../lib/index.js';

/** How long a candidate told to stop may take to withdraw or resign before it exits anyway. */
const STOP_TIMEOUT = 5_000;

function requiredEnv(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') throw new Error(`${name} is required`);
  return value;
}

function report(event: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

const election = requiredEnv('ELECTION');
const value = requiredEnv('VALUE');
const ttl = Number(requiredEnv('TTL'));

const stop = new AbortController();
process.stdin.on('close', () => {
  stop.abort(new Error('stdin closed'));
  setTimeout(() => process.exit(1), STOP_TIMEOUT).unref();
});
process.stdin.resume();

// A campaign queues the candidate with a signal-with-start: once that returns, the server has the candidacy. Only the
// first counts; a campaign asks again, at the back of the queue, only if its request was lost.
let queued = false;
const reportQueued: WorkflowClientInterceptor = {
  async signalWithStart(input, next) {
    const runId = await next(input);
    if (!queued) report({ queued: true });
    queued = true;
    return runId;
  },
};

const connection = await Connection.connect({
  address: requiredEnv('TEMPORAL_ADDRESS'),
  interceptors: retryInterceptors(),
});
const client = new Client({
  connection,
  namespace: requiredEnv('TEMPORAL_NAMESPACE'),
  interceptors: { workflow: [reportQueued] },
});
const { campaign } = createCoordinator({ client, taskQueue: requiredEnv('TASK_QUEUE') });
try {
  const leadership = await campaign(election, { value, ttl, signal: stop.signal });
  const { term } = leadership;
  leadership.signal.addEventListener(
    'abort',
    () => {
      if (!stop.signal.aborted) report({ lost: true, term, reason: String(leadership.signal.reason) });
    },
    { once: true },
  );
  report({ leading: true, term });
  if (!stop.signal.aborted) await once(stop.signal, 'abort');
  await leadership.resign();
} catch (error) {
  // Told to stop while campaigning: the campaign withdrew the candidacy as it rejected.
  if (!stop.signal.aborted) throw error;
} finally {
  await connection.close();
}
process.exit(0);
