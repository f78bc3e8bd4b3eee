// One Temporal worker and client per test file, on the server `npm test` started (TEMPORAL_ADDRESS), with the
// workflows bundled once per run (TEMPORAL_COORDINATION_BUNDLE).
import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, type Worker } from '@temporalio/worker';
import { retryInterceptors } from '../../lib/index.js';
import { createWorker, type CreateWorkerOptions } from '../../lib/worker.js';
import { fileLogger, LOG_DIR_ENV } from '../../scripts/logs.js';

export interface TestEnv {
  readonly address: string;
  readonly namespace: string;
  readonly taskQueue: string;
  readonly client: Client;
  readonly nativeConnection: NativeConnection;
  readonly worker: Worker;
  /** A fresh ID, unique to this run, for a resource or a queue key. */
  id(label: string): string;
  teardown(): Promise<void>;
}

export function serverAddress(): { address: string; namespace: string } {
  const address = process.env['TEMPORAL_ADDRESS'];
  if (!address) {
    throw new Error('TEMPORAL_ADDRESS is not set: run the tests with `npm test`, which starts a dev server');
  }
  return { address, namespace: process.env['TEMPORAL_NAMESPACE'] ?? 'default' };
}

export function workflowBundle(): { code: string } | undefined {
  const path = process.env['TEMPORAL_COORDINATION_BUNDLE'];
  return path ? { code: readFileSync(path, 'utf8') } : undefined;
}

/** Resolves once `signal` is aborted, at once if it already is. */
export function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

/** The folder of this run's logs (`npm test` makes it and prints it), or `undefined` when run without it. */
export function logDirectory(): string | undefined {
  return process.env[LOG_DIR_ENV] || undefined;
}

/** `<name>.log` in the run's log folder, for a dev server of a test's own (`undefined`: the server's default). */
export function logFile(name: string): string | undefined {
  const dir = logDirectory();
  return dir && join(dir, `${name}.log`);
}

/**
 * Sends the SDK's worker and runtime warnings and errors to `<label>-<pid>.log` in the run's log folder, out of the
 * test output (without a folder, to the console). Must run before anything creates the SDK runtime; the first call in
 * a process wins.
 */
export function quietRuntime(label: string): void {
  const dir = logDirectory();
  const logger = dir ? fileLogger(join(dir, `${label}-${process.pid}.log`), 'WARN') : new DefaultLogger('WARN');
  try {
    // Forwarded, the SDK core's own warnings go to the same logger; else they would go straight to stderr.
    Runtime.install({
      logger,
      telemetryOptions: { logging: { filter: { core: 'WARN', other: 'ERROR' }, forward: {} } },
    });
  } catch {
    // Already installed by an earlier call in this process.
  }
}

export interface TestEnvOptions extends Omit<CreateWorkerOptions, 'connection'> {
  /** A server of the test's own (for example one with shrunk limits). @default the one `npm test` started */
  readonly server?: { readonly address: string; readonly namespace: string };
}

/** Connects to the test server and starts a worker on a task queue of its own. */
export async function startTestEnv(name: string, options: TestEnvOptions = {}): Promise<TestEnv> {
  quietRuntime(name);
  const { server = serverAddress(), ...workerOptions } = options;
  const { address, namespace } = server;
  const taskQueue = `${name}-${randomUUID().slice(0, 8)}`;
  const connection = await Connection.connect({ address, interceptors: retryInterceptors() });
  const client = new Client({ connection, namespace });
  const nativeConnection = await NativeConnection.connect({ address });
  const bundle = workflowBundle();
  const worker = await createWorker({
    ...(bundle ? { workflowBundle: bundle } : {}),
    ...workerOptions,
    connection: nativeConnection,
    namespace,
    taskQueue,
  });
  const running = worker.run();
  return {
    address,
    namespace,
    taskQueue,
    client,
    nativeConnection,
    worker,
    id: (label) => `${label}-${randomUUID()}`,
    async teardown() {
      worker.shutdown();
      await running;
      await nativeConnection.close();
      await connection.close();
    },
  };
}
