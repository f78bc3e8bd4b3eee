import { randomUUID } from 'node:crypto';
import {
  WithStartWorkflowOperation,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type Client,
} from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { failureTypes } from '../errors.js';
import { checkResourceId } from '../ids.js';
import {
  checkKnownOptions,
  optionalBoolean,
  optionalPositiveDuration,
  optionalSignal,
  positiveDuration,
  positiveInteger,
} from '../options.js';
import { isBusy, isTransient, retryTransient, type RetryOptions } from '../rpc.js';
import { acquireSignal, tryAcquireUpdate, withdrawSignal } from '../workflows/definitions.js';
import type { AcquireRequest, Decided } from '../workflows/lock-core.js';
import { DEFAULT_TTL, READ_WRITE, headSlots } from '../workflows/lock-protocol.js';
import { lockWorkflow } from '../workflows/lock-workflow.js';
import type { AcquireOptions } from './options.js';

/** How long requests are retried while the server is unreachable, unless `waitTimeout` says otherwise. */
export const UNAVAILABLE_BUDGET = 60_000;
/** A request is given at least this long, so a short `waitTimeout` on a busy server times out rather than fails. */
const MIN_REQUEST_BUDGET = 5_000;
/** How long the withdrawal of an abandoned request may be retried. */
const WITHDRAW_BUDGET = 10_000;

const knownOptions = new Set(['ttl', 'waitTimeout', 'signal', 'limit', 'mode', 'autoRenew']);
const modes = new Set<unknown>(['read', 'write']);

/** An `acquire` call's options, checked and resolved. */
export type AcquireParams = ReturnType<typeof acquireParams>;

/** Checks `acquire`'s arguments, throwing a `TypeError` or `RangeError` that names the problem before anything is sent. */
export function acquireParams(resourceId: string, options: AcquireOptions, prefix: string) {
  checkResourceId('resourceId', resourceId, prefix);
  checkKnownOptions(options, knownOptions);
  const { mode } = options;
  if (mode !== undefined && !modes.has(mode)) {
    throw new TypeError(`Expected \`mode\` to be 'read' or 'write', got \`${String(mode)}\``);
  }
  if (mode !== undefined && options.limit !== undefined) {
    throw new TypeError('A read-write lock (`mode`) has no `limit`: give one or the other');
  }
  const limit = mode ? READ_WRITE : options.limit === undefined ? 1 : positiveInteger('limit', options.limit);
  return {
    resourceId,
    workflowId: prefix + resourceId,
    ttl: optionalPositiveDuration('ttl', options.ttl, DEFAULT_TTL),
    limit,
    mode,
    /** How many waiters at the head of the queue may block in an update. */
    slots: headSlots(limit),
    waitTimeout: options.waitTimeout === undefined ? undefined : positiveDuration('waitTimeout', options.waitTimeout),
    autoRenew: optionalBoolean('autoRenew', options.autoRenew, true),
    signal: optionalSignal('signal', options.signal),
    /** Set for an election: its workflow keeps leader changes, and this candidate's value goes with its grant. */
    election: false as boolean,
    value: undefined as string | undefined,
  };
}

/** One request for a slot, as the lock workflow knows it: sent, asked again under a new ID, or withdrawn. */
export class LockRequest {
  requestId = randomUUID();
  /** Whether the workflow may have the request: from then on, giving up must withdraw it. */
  accepted = false;

  constructor(
    private readonly client: Client,
    private readonly taskQueue: string,
    private readonly params: AcquireParams,
  ) {}

  private request(): AcquireRequest {
    const { ttl, limit, mode, value } = this.params;
    return { requestId: this.requestId, ttl, limit, ...(mode && { mode }), ...(value !== undefined && { value }) };
  }

  /** Queues the request (signal-with-start: the first request creates the workflow). */
  async send(): Promise<void> {
    const { workflowId, waitTimeout, signal, election } = this.params;
    const args = this.request();
    await retryTransient(
      'acquire',
      () =>
        this.client.workflow.signalWithStart(lockWorkflow, {
          workflowId,
          taskQueue: this.taskQueue,
          args: [election ? { election } : {}],
          signal: acquireSignal,
          signalArgs: [args],
        }),
      // Not the wait's signal: a server unreachable for the whole wait budget is reported as such, not as a timeout.
      {
        signal,
        budget: Math.max(waitTimeout ?? UNAVAILABLE_BUDGET, MIN_REQUEST_BUDGET),
        connection: this.client.connection,
      },
    );
    this.accepted = true;
  }

  /** Asks for a slot now, never queued (see `tryAcquireNow`). */
  tryNow(): Promise<Decided> {
    const { workflowId, signal } = this.params;
    this.accepted = true;
    return tryAcquireNow(this.client, this.taskQueue, workflowId, this.request(), {
      signal,
      budget: UNAVAILABLE_BUDGET,
    });
  }

  /** Queues the request again under a new ID, at the back of the queue. */
  sendAgain(): Promise<void> {
    this.requestId = randomUUID();
    return this.send();
  }

  /** Best effort: a request given up must never be granted later (a grant that raced it is released). */
  async withdraw(): Promise<void> {
    const handle = this.client.workflow.getHandle(this.params.workflowId);
    try {
      await retryTransient('withdraw', () => handle.signal(withdrawSignal, { requestId: this.requestId }), {
        budget: WITHDRAW_BUDGET,
      });
    } catch {
      // Unreachable or closed: an unclaimed grant lapses after the claim window anyway.
    }
  }
}

function isNotFree(error: unknown): boolean {
  return (
    error instanceof WorkflowUpdateFailedError &&
    error.cause instanceof ApplicationFailure &&
    error.cause.type === failureTypes.notFree
  );
}

/**
 * Asks the lock workflow `workflowId` for a slot now, never queued: granted, rejected, or `unknown` when the resource
 * has holders or waiters. Update-with-start, so a free resource answers in one round trip, whether its workflow runs
 * or not; the workflow is started on `taskQueue` if it does not.
 */
export async function tryAcquireNow(
  client: Client,
  taskQueue: string,
  workflowId: string,
  request: AcquireRequest,
  retry: Pick<RetryOptions, 'signal' | 'budget'>,
): Promise<Decided> {
  const update = () =>
    client.workflow.executeUpdateWithStart(tryAcquireUpdate, {
      args: [request],
      startWorkflowOperation: new WithStartWorkflowOperation(lockWorkflow, {
        workflowId,
        taskQueue,
        args: [{}],
        workflowIdConflictPolicy: 'USE_EXISTING',
      }),
    });
  try {
    // Busy, or a run that completed as the update reached it: asked again, under the same ID.
    return await retryTransient('tryAcquire', update, {
      ...retry,
      retryIf: (error) => isTransient(error) || isBusy(error) || error instanceof WorkflowNotFoundError,
    });
  } catch (error) {
    if (!isNotFree(error)) throw error;
    return { state: 'unknown' };
  }
}
