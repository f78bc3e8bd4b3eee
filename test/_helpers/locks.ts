// Waits and hand-offs the lock tests share, through the public client API only (the contract suite imports this file).
import { setTimeout as sleep } from 'node:timers/promises';
import type { Coordinator, Lease } from '../../lib/index.js';

/** Polls `check` until it holds; fails, rather than hangs, if it never does. */
export async function until(what: string, check: () => Promise<boolean> | boolean, timeout = 60_000): Promise<void> {
  const deadline = performance.now() + timeout;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`Timed out waiting until ${what}`);
    await sleep(20);
  }
}

/**
 * Waits until exactly `count` requests wait for `resourceId` (so requests are known to have reached the workflow in
 * order, or a withdrawal to have taken effect); fails, rather than hangs, if that never happens.
 */
export async function untilWaiting(coordinator: Pick<Coordinator, 'lockStatus'>, resourceId: string, count: number) {
  const deadline = performance.now() + 60_000;
  let waiting: number;
  while ((waiting = (await coordinator.lockStatus(resourceId)).waiting) !== count) {
    if (performance.now() > deadline) throw new Error(`${waiting} waiters on ${resourceId}, never ${count}`);
    await sleep(20);
  }
}

/**
 * Queues a waiter behind `holder`, releases `holder` and returns the token that waiter is granted. Grants of one run
 * number their tokens one by one, so a request that gave up but was granted anyway would have taken `holder.token + 1`.
 */
export async function nextGrantAfter(coordinator: Pick<Coordinator, 'acquire' | 'lockStatus'>, holder: Lease) {
  const next = coordinator.acquire(holder.resourceId);
  await untilWaiting(coordinator, holder.resourceId, 1);
  await holder.release();
  const lease = await next;
  await lease.release();
  return lease.token;
}
