import { Client, Connection } from '@temporalio/client';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import type { CoordinatorOptions } from './context.js';
import { retryInterceptors } from './rpc.js';
import { createCoordinator, type Coordinator } from './coordinator.js';

let current: Coordinator | undefined;

/** Sets the coordinator behind the module-level functions (`withLock`, `enqueue`, ...). */
export function configure(options: CoordinatorOptions): void {
  current = createCoordinator(options);
}

/**
 * The coordinator behind the module-level functions: the one `configure` set, else one connected lazily from the
 * environment with @temporalio/envconfig (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TLS, profiles).
 */
export function defaultCoordinator(): Coordinator {
  if (!current) {
    const { connectionOptions, namespace } = loadClientConnectConfig();
    const connection = Connection.lazy({
      ...(connectionOptions as Parameters<typeof Connection.lazy>[0]),
      interceptors: retryInterceptors(),
    });
    current = createCoordinator({ client: new Client({ connection, namespace: namespace ?? 'default' }) });
  }
  return current;
}
