// What the client-side child processes share: a Temporal client and the coordinator settings from the environment.
import { Client, Connection } from '@temporalio/client';
import { createCoordinator, retryInterceptors, type Coordinator } from '../../../lib/index.js';

export function requiredEnv(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
}

export async function connect(): Promise<{ coordinator: () => Coordinator; close: () => Promise<void> }> {
  const address = requiredEnv('TEMPORAL_ADDRESS');
  const taskQueue = requiredEnv('TASK_QUEUE');
  const connection = await Connection.connect({ address, interceptors: retryInterceptors() });
  const client = new Client({ connection, namespace: process.env['TEMPORAL_NAMESPACE'] ?? 'default' });
  return {
    // One coordinator per contender: nothing is shared between them but the connection, as between processes.
    coordinator: () => createCoordinator({ client, taskQueue }),
    close: () => connection.close(),
  };
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` every 100 ms until it holds; after `timeout` ms fails naming `what`, with `diagnose`'s findings. */
export async function until(
  check: () => Promise<boolean>,
  timeout: number,
  what: string,
  diagnose?: () => Promise<string>,
): Promise<void> {
  const deadline = performance.now() + timeout;
  while (!(await check())) {
    if (performance.now() > deadline) {
      throw new Error(`${what}: not within ${timeout} ms${diagnose ? `; ${await diagnose()}` : ''}`);
    }
    await sleep(100);
  }
}

/** One line of JSON on stdout: how a child reports to the test. */
export function report(event: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(event) + '\n');
}

/** Listens for a line `stop` on stdin, with which a test ends a contender script's loops; `requested` says if it came. */
export function stopLine(): { readonly requested: boolean } {
  const stop = { requested: false };
  process.stdin.setEncoding('utf8').on('data', (chunk: string) => {
    if (chunk.includes('stop')) stop.requested = true;
  });
  return stop;
}
