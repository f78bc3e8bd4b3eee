// `enqueue` for workflow code: the client's enqueue, run as an activity with a job ID fixed in the workflow, so a retried
// activity sends a duplicate the queue ignores.
import { proxyActivities, uuid4 } from '@temporalio/workflow';
import { DEFAULT_ID_PREFIX, DEFAULT_TASK_QUEUE } from '../ids.js';
import type { EnqueueOptions } from '../queue/options.js';
import { CallOrder } from './call-order.js';
import { requestActivityNames as names, type RequestActivities } from './requests.js';

export interface WorkflowEnqueueOptions extends EnqueueOptions {
  /**
   * Task queue of the coordination worker: the enqueue activity runs there, and starts the key's queue workflow there.
   * @default 'temporal-coordination'
   */
  readonly taskQueue?: string;
  /**
   * Prefix of the queue workflow's ID; must match the `idPrefix` of the clients that share the key.
   * @default 'temporal-coordination/'
   */
  readonly idPrefix?: string;
}

/** A job accepted by a key's queue. */
export interface EnqueuedJob {
  readonly key: string;
  readonly id: string;
}

/** One chain per queue workflow ID: this workflow's enqueues to a key take effect in call order. */
const order = new CallOrder();

/**
 * Appends a job to `key`'s queue from workflow code, and resolves once the queue has durably accepted it (not when it
 * ran). It joins the same queue, in the same order, as jobs enqueued by clients; this workflow's enqueues to one key
 * take effect in call order, awaited or not. The arguments and options are checked
 * by the activity exactly as the client checks them: bad input rejects with an `ActivityFailure` whose cause is a
 * non-retryable `ApplicationFailure` of type `TypeError` or `RangeError`.
 *
 * Needs a worker made with `createWorker` (or one that registers `createActivities()`) polling `options.taskQueue`.
 */
export async function enqueue(
  key: string,
  name: string,
  args: readonly unknown[],
  options: WorkflowEnqueueOptions = {},
): Promise<EnqueuedJob> {
  const { taskQueue = DEFAULT_TASK_QUEUE, idPrefix = DEFAULT_ID_PREFIX, ...enqueueOptions } = options;
  if (typeof taskQueue !== 'string' || taskQueue === '') {
    throw new TypeError(`Expected \`taskQueue\` to be a non-empty string, got \`${String(taskQueue)}\``);
  }
  const { [names.enqueue]: enqueueActivity } = proxyActivities<RequestActivities>({
    taskQueue,
    // The client's own retries of an unreachable server take up to 30 s.
    startToCloseTimeout: 60_000,
    retry: { initialInterval: 100, backoffCoefficient: 2, maximumInterval: 2_000 },
  });
  // Fixed here, in workflow code: every attempt of the activity (and any replay) sends the same job.
  const jobId = enqueueOptions.jobId ?? uuid4();
  // A Date would reach the activity as a string.
  const { runAt } = enqueueOptions;
  const sentOptions = { ...enqueueOptions, jobId, ...(runAt instanceof Date ? { runAt: runAt.getTime() } : {}) };
  const queue = `${idPrefix}${String(key)}`;
  const id = await order.run(queue, () => enqueueActivity({ key, name, args, options: sentOptions, idPrefix }));
  return { key, id };
}
