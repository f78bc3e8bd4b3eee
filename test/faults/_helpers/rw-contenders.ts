// One contender for a read-write lock in a child process: it loops withReadLock (MODE=read) or withWriteLock
// (MODE=write) on RESOURCE around a critical section that writes `enter` to the read-write fence (rw-fence.ts), waits
// SECTION_MS and writes `exit`, then waits PAUSE_MS before it asks again. A line `stop` on stdin ends the loop after the
// acquisition in progress is granted and done; then one JSON summary line is printed and the process exits:
// `{ name, mode, grants, tokens: [token...], maxWaitMs, errors: [message...] }`.
// Usage: node --import tsx rw-contenders.ts (TEMPORAL_ADDRESS, TASK_QUEUE, RESOURCE, NAME, MODE, SECTION_MS, PAUSE_MS).
import type { Lease } from '../../../lib/index.js';
import { connect, report, requiredEnv, sleep, stopLine } from './client.js';
import { RwFence, type RwMode } from './rw-fence.js';

const resource = requiredEnv('RESOURCE');
const name = requiredEnv('NAME');
const mode = requiredEnv('MODE') as RwMode;
const sectionMs = Number(process.env['SECTION_MS'] ?? 10);
const pauseMs = Number(process.env['PAUSE_MS'] ?? 0);

const fence = RwFence.open();
const { coordinator, close } = await connect();
const stop = stopLine();

/** Writes `enter`, waits, writes `exit` (unless the fence refused the `enter`). */
async function section(lease: Lease): Promise<void> {
  if (!(await fence.write(resource, lease, name, mode, 'enter'))) return;
  await sleep(sectionMs);
  await fence.write(resource, lease, name, mode, 'exit');
}

const { withReadLock, withWriteLock } = coordinator();
const withRwLock = mode === 'read' ? withReadLock : withWriteLock;
const tokens: number[] = [];
const errors: string[] = [];
let maxWaitMs = 0;
await fence.warm();
report({ ready: name });
while (!stop.requested) {
  const asked = performance.now();
  try {
    await withRwLock(resource, async (lease) => {
      maxWaitMs = Math.max(maxWaitMs, performance.now() - asked);
      tokens.push(lease.token);
      await section(lease);
    });
  } catch (error) {
    errors.push(String(error));
  }
  await sleep(pauseMs);
}
report({ name, mode, grants: tokens.length, tokens, maxWaitMs: Math.round(maxWaitMs), errors });
await fence.close();
await close();
process.exit(0);
