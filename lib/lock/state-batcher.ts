import { WorkflowNotFoundError, type WorkflowHandle } from '@temporalio/client';
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
  private inFlight = false;

  constructor(
    private readonly handle: WorkflowHandle,
    private readonly onIdle: () => void,
  ) {}

  state(requestId: string): Promise<RequestState> {
    return new Promise((resolve, reject) => {
      const waiting = this.queued.get(requestId);
      if (waiting) waiting.push({ resolve, reject });
      else this.queued.set(requestId, [{ resolve, reject }]);
      if (!this.inFlight) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.inFlight = true;
    while (this.queued.size > 0) {
      const batch = this.queued;
      this.queued = new Map();
      const requestIds = [...batch.keys()];
      try {
        const states = await this.handle.query(requestStatesQuery, requestIds).catch((error: unknown) => {
          // No workflow: none of these requests is known any more.
          if (error instanceof WorkflowNotFoundError) return requestIds.map((): RequestState => ({ state: 'unknown' }));
          throw error;
        });
        requestIds.forEach((requestId, i) => {
          for (const pending of batch.get(requestId)!) pending.resolve(states[i] ?? { state: 'unknown' });
        });
      } catch (error) {
        for (const waiting of batch.values()) for (const pending of waiting) pending.reject(error);
      }
    }
    this.inFlight = false;
    this.onIdle();
  }
}
