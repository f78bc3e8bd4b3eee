// One contender for pairs of locks in a child process: it loops withLocks on two distinct resources picked at random
// out of RESOURCES (comma-separated, handed over in random order), around a short critical section that writes `enter`
// to both fenced resources, waits SECTION_MS and writes `exit` to both. A line `stop` on stdin ends the loop after the
// acquisition in progress is granted and done; then one JSON summary line is printed and the process exits:
// `{ name, sections, tokens: { [resource]: [token...] }, maxWaitMs, errors: [message...] }`.
// Usage: node --import tsx pair-contenders.ts (TEMPORAL_ADDRESS, TASK_QUEUE, RESOURCES, NAME, SECTION_MS).
import type { LeaseSet } from '../../../lib/index.js';
import { Fence } from './fence.js';
import { connect, report, requiredEnv, sleep, stopLine } from './client.js';

const resources = requiredEnv('RESOURCES').split(',');
const name = requiredEnv('NAME');
const sectionMs = Number(process.env['SECTION_MS'] ?? 5);

const fence = Fence.open();
const { coordinator, close } = await connect();
const stop = stopLine();

/** Two distinct resources, in random order. */
function pickPair(): [string, string] {
  const first = Math.floor(Math.random() * resources.length);
  const second = (first + 1 + Math.floor(Math.random() * (resources.length - 1))) % resources.length;
  return [resources[first]!, resources[second]!];
}

/** Writes `enter` to every resource of the set, waits, then writes `exit` to each; false if the fence refused. */
async function section(leases: LeaseSet): Promise<boolean> {
  for (const [resource, lease] of leases) {
    if (!(await fence.write(resource, lease, name, 'enter'))) return false;
  }
  await sleep(sectionMs);
  for (const [resource, lease] of leases) {
    if (lease.signal.aborted) await fence.note(resource, lease.token, name, 'lease-lost');
    else if (!(await fence.write(resource, lease, name, 'exit'))) return false;
  }
  return true;
}

const { withLocks } = coordinator();
const tokens: Record<string, number[]> = Object.fromEntries(resources.map((resource) => [resource, []]));
const errors: string[] = [];
let sections = 0;
let maxWaitMs = 0;
await fence.warm();
report({ ready: name });
while (!stop.requested) {
  const asked = performance.now();
  try {
    await withLocks(pickPair(), async (leases) => {
      maxWaitMs = Math.max(maxWaitMs, performance.now() - asked);
      for (const [resource, lease] of leases) tokens[resource]!.push(lease.token);
      if (await section(leases)) sections++;
    });
  } catch (error) {
    errors.push(String(error));
  }
}
report({ name, sections, tokens, maxWaitMs: Math.round(maxWaitMs), errors });
await fence.close();
await close();
process.exit(0);
