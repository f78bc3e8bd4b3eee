import { createContext, type CoordinatorOptions } from './context.js';
import { createElectionApi, type ElectionApi } from './election/client.js';
import { createLockApi, type LockApi } from './lock/client.js';
import { createQueueApi, type QueueApi } from './queue/client.js';

/** Every operation, bound to one Temporal client, namespace, task queue and ID prefix. Methods may be destructured. */
export interface Coordinator extends LockApi, ElectionApi, QueueApi {}

/** Creates a coordinator bound to `options.client`. */
export function createCoordinator(options: CoordinatorOptions): Coordinator {
  const context = createContext(options);
  return { ...createLockApi(context), ...createElectionApi(context), ...createQueueApi(context) };
}
