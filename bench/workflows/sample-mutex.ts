/**
 * The `sample-mutex` baseline: the pattern of the Temporal TypeScript samples' mutex, written here from its
 * description. A lock workflow per resource queues requests (signals carrying the requester's workflow ID) and grants
 * them in FIFO order by signalling the requester a release-signal name made for that grant; it then waits for that
 * signal (or a timeout) before granting the next. Requester workflows ask with signal-with-start (from an activity,
 * since workflow code cannot signal-with-start), wait for the grant, run their critical section and signal the
 * release name.
 *
 * Two additions for the benchmark, neither on the hand-off path: the grant carries a counter (a fencing token, so the
 * token-order check can run), and the requester reports its critical section to the bench process through a sink.
 * Workflow-safe: imports only `@temporalio/workflow`.
 * @module
 */
import {
  condition,
  continueAsNew,
  defineSignal,
  getExternalWorkflowHandle,
  proxyActivities,
  proxySinks,
  setHandler,
  uuid4,
  workflowInfo,
  type Sinks,
} from '@temporalio/workflow';

export interface LockRequest {
  /** Workflow ID of the requester: the grant is signalled to it. */
  readonly requesterId: string;
  /** The lock is taken back after this long if the holder never releases it. */
  readonly timeoutMs: number;
}

export interface LockGrant {
  /** Signal the lock workflow with this name to release. */
  readonly releaseSignalName: string;
  /** Grant counter (added for the bench's fencing-token check). */
  readonly token: number;
}

export const lockRequestSignal = defineSignal<[LockRequest]>('tc.bench.mutex.request');
export const lockGrantedSignal = defineSignal<[LockGrant]>('tc.bench.mutex.granted');

/** Like the sample, a lock workflow hands over to a new run when its history reaches this length. */
const MAX_HISTORY_LENGTH = 2_000;

export interface MutexState {
  readonly requests: readonly LockRequest[];
  readonly nextToken: number;
}

/** One run after another per resource, for ever: the bench terminates it when done. */
export async function mutexLockWorkflow(state: MutexState = { requests: [], nextToken: 1 }): Promise<void> {
  const requests = [...state.requests];
  let nextToken = state.nextToken;
  setHandler(lockRequestSignal, (request) => {
    requests.push(request);
  });
  while (workflowInfo().historyLength < MAX_HISTORY_LENGTH) {
    await condition(() => requests.length > 0);
    const request = requests.shift()!;
    const releaseSignalName = `tc.bench.mutex.release.${uuid4()}`;
    let released = false;
    // Set before the grant goes out (the sample sets it just after; a release arriving earlier would be buffered).
    setHandler(defineSignal(releaseSignalName), () => {
      released = true;
    });
    await getExternalWorkflowHandle(request.requesterId).signal(lockGrantedSignal, {
      releaseSignalName,
      token: nextToken++,
    });
    await condition(() => released, request.timeoutMs);
    setHandler(defineSignal(releaseSignalName), undefined);
  }
  // The counter goes along too, so tokens keep increasing across runs.
  await continueAsNew<typeof mutexLockWorkflow>({ requests, nextToken });
}

/** Reports the requester's critical section to the bench process (called after the activation, not on replay). */
export interface MutexSinks extends Sinks {
  criticalSection: {
    enter(token: number): void;
    exit(token: number): void;
  };
}

export interface MutexActivities {
  /** Signal-with-start of the lock workflow `lockWorkflowId`, asking for the lock for the calling workflow. */
  requestLock(lockWorkflowId: string, timeoutMs: number): Promise<void>;
}

const { requestLock } = proxyActivities<MutexActivities>({ startToCloseTimeout: '1 minute' });
const { criticalSection } = proxySinks<MutexSinks>();

export interface RequesterInput {
  readonly lockWorkflowId: string;
  /** How many times to take the lock, one after the other. */
  readonly rounds: number;
  readonly timeoutMs: number;
}

/** A contender: takes the lock `rounds` times, with an empty critical section each time. */
export async function mutexRequester(input: RequesterInput): Promise<void> {
  let grant: LockGrant | undefined;
  setHandler(lockGrantedSignal, (granted) => {
    grant = granted;
  });
  for (let round = 0; round < input.rounds; round++) {
    if (workflowInfo().continueAsNewSuggested) {
      await continueAsNew<typeof mutexRequester>({ ...input, rounds: input.rounds - round });
    }
    await requestLock(input.lockWorkflowId, input.timeoutMs);
    await condition(() => grant !== undefined);
    const { releaseSignalName, token } = grant!;
    grant = undefined;
    criticalSection.enter(token);
    criticalSection.exit(token);
    await getExternalWorkflowHandle(input.lockWorkflowId).signal(releaseSignalName);
  }
}
