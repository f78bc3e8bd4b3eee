import {
  QueryRejectedError,
  WorkflowNotFoundError,
  type WorkflowClient,
  type WorkflowHandle,
} from '@temporalio/client';
import { requestStatesQuery } from '../workflows/definitions.js';
import type { RequestState } from '../workflows/lock-core.js';

interface Pending {
  resolve(state: RequestState): void;
  reject(error: unknown): void;
}

/**
 * Reads request states of one resource with at most one query in flight per process: callers that ask while a query
 * runs are answered together by the next one. Concurrent queries to one workflow queue up behind each other in the
 * worker (seconds at the tail), so batching them is what keeps far-back waiters cheap.
 */
export class StateBatcher {
  private queued = new Map<string, Pending[]>();
  /** The callers the query in flight answers, and how to call it off once none of them waits any more. */
  private inFlight: { readonly batch: Map<string, Pending[]>; readonly controller: AbortController } | undefined;

  private readonly handle: WorkflowHandle;

  /** `client` must reject queries to closed runs (`queryRejectCondition: 'NOT_OPEN'`). */
  constructor(
    private readonly client: WorkflowClient,
    workflowId: string,
    private readonly onIdle: () => void,
  ) {
    this.handle = client.getHandle(workflowId);
  }

  /** The state of `requestId`; `signal` ends the wait (the query goes on while other callers wait for it). */
  state(requestId: string, signal: AbortSignal): Promise<RequestState> {
    return new Promise((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason);
      const onAbort = () => {
        reject(signal.reason);
        this.forget(requestId, pending);
      };
      const pending: Pending = {
        resolve: (state) => {
          signal.removeEventListener('abort', onAbort);
          resolve(state);
        },
        reject: (error) => {
          signal.removeEventListener('abort', onAbort);
          reject(error);
        },
      };
      signal.addEventListener('abort', onAbort, { once: true });
      const waiting = this.queued.get(requestId);
      if (waiting) waiting.push(pending);
      else this.queued.set(requestId, [pending]);
      if (!this.inFlight) void this.flush();
    });
  }

  /** Drops a caller that stopped waiting; a query that no caller waits for any more is called off. */
  private forget(requestId: string, pending: Pending): void {
    for (const batch of [this.queued, this.inFlight?.batch]) {
      const waiting = batch?.get(requestId);
      if (!waiting?.includes(pending)) continue;
      waiting.splice(waiting.indexOf(pending), 1);
      if (waiting.length === 0) batch!.delete(requestId);
    }
    if (this.inFlight?.batch.size === 0) this.inFlight.controller.abort();
  }

  private async flush(): Promise<void> {
    while (this.queued.size > 0) {
      const batch = this.queued;
      this.queued = new Map();
      const controller = new AbortController();
      this.inFlight = { batch, controller };
      const requestIds = [...batch.keys()];
      try {
        const states = await this.client
          .withAbortSignal(controller.signal, () => this.handle.query(requestStatesQuery, requestIds))
          .catch((error: unknown) => {
            // No running workflow: none of these requests is known any more. A closed run (terminated, or failed by a
            // nondeterminism error) would answer from its last state, where its waiters wait forever.
            if (error instanceof WorkflowNotFoundError || error instanceof QueryRejectedError)
              return requestIds.map((): RequestState => ({ state: 'unknown' }));
            throw error;
          });
        requestIds.forEach((requestId, i) => {
          for (const pending of batch.get(requestId) ?? []) pending.resolve(states[i] ?? { state: 'unknown' });
        });
      } catch (error) {
        for (const waiting of batch.values()) for (const pending of waiting) pending.reject(error);
      }
    }
    this.inFlight = undefined;
    this.onIdle();
  }
}
