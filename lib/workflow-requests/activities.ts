// The activities behind `withLock` and `enqueue` from `temporal-coordination/workflows`: each sends what a client would
// send, with the worker's own client, and starts coordination workflows on the task queue the activity runs on (the
// coordination worker's).
import { Context } from '@temporalio/activity';
import { WorkflowNotFoundError, WorkflowUpdateFailedError, type Client, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { createContext } from '../context.js';
import type { TelemetryOptions } from '../telemetry.js';
import { failures } from '../errors.js';
import { createQueueApi, type QueueApi } from '../queue/client.js';
import { acquireSignal, releaseSignal, renewUpdate, withdrawSignal } from '../workflows/definitions.js';
import { lockWorkflow } from '../workflows/lock-workflow.js';
import { tryAcquireNow } from '../lock/request.js';
import { requestActivityNames as names, type RequestActivities } from '../workflows/requests.js';

/** How long one attempt of the try-acquire activity retries a busy or unreachable workflow. */
const TRY_BUDGET = 5_000;

/**
 * One queue API per worker client, task queue and ID prefix (it holds no connection of its own), reporting to
 * OpenTelemetry under the worker's `telemetry` options.
 */
function queueApis(
  telemetry: TelemetryOptions | undefined,
): (client: Client, taskQueue: string, idPrefix: string) => QueueApi {
  const apis = new WeakMap<Client, Map<string, QueueApi>>();
  return (client, taskQueue, idPrefix) => {
    let byContext = apis.get(client);
    if (!byContext) apis.set(client, (byContext = new Map()));
    const key = JSON.stringify([taskQueue, idPrefix]);
    let api = byContext.get(key);
    if (!api) {
      const context = createContext({ client, taskQueue, idPrefix, ...(telemetry ? { telemetry } : {}) });
      byContext.set(key, (api = createQueueApi(context)));
    }
    return api;
  };
}

/** A signal to a workflow that may have exited: one that holds nothing needs nothing released or withdrawn. */
async function signalIfRunning(send: (handle: WorkflowHandle) => Promise<void>, workflowId: string): Promise<void> {
  try {
    await send(Context.current().client.workflow.getHandle(workflowId));
  } catch (error) {
    if (!(error instanceof WorkflowNotFoundError)) throw error;
  }
}

/**
 * The activities `withLock` and `enqueue` use from workflow code, their enqueues counted and traced under `telemetry`
 * (the worker's options). `createActivities` includes them.
 */
export function createWorkflowRequestActivities(telemetry?: TelemetryOptions): RequestActivities {
  const queueApi = queueApis(telemetry);
  return {
    async [names.acquire]({ workflowId, request, election }) {
      const { client, info } = Context.current();
      await client.workflow.signalWithStart(lockWorkflow, {
        workflowId,
        taskQueue: info.taskQueue,
        args: [election ? { election } : {}],
        signal: acquireSignal,
        signalArgs: [request],
      });
    },

    async [names.tryAcquire]({ workflowId, request }) {
      const { client, info } = Context.current();
      // Retried within the attempt while the workflow is busy; the activity's own retries cover the rest.
      return tryAcquireNow(client, info.taskQueue, workflowId, request, { budget: TRY_BUDGET });
    },

    async [names.renew]({ workflowId, requestId, token }) {
      try {
        return await Context.current()
          .client.workflow.getHandle(workflowId)
          .executeUpdate(renewUpdate, { args: [{ requestId, token }] });
      } catch (error) {
        // The workflow said no (stale token, lapsed grant) or is gone: lost for good, not worth a retry.
        if (error instanceof WorkflowUpdateFailedError || error instanceof WorkflowNotFoundError) {
          throw failures.leaseLost(token, { cause: error });
        }
        throw error;
      }
    },

    async [names.release]({ workflowId, requestId, token }) {
      await signalIfRunning((handle) => handle.signal(releaseSignal, { requestId, token }), workflowId);
    },

    async [names.withdraw]({ workflowId, requestId }) {
      await signalIfRunning((handle) => handle.signal(withdrawSignal, { requestId }), workflowId);
    },

    async [names.enqueue]({ key, name, args, options, idPrefix }) {
      const { client, info } = Context.current();
      try {
        const job = await queueApi(client, info.taskQueue, idPrefix).enqueue(key, name, args, options);
        return job.id;
      } catch (error) {
        // Bad input is a bug in the calling workflow: retrying would not fix it.
        if (error instanceof TypeError || error instanceof RangeError) {
          throw ApplicationFailure.create({ type: error.name, message: error.message, nonRetryable: true });
        }
        throw error;
      }
    },
  };
}
