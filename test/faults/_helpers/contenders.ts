// CONTENDERS contenders for one lock in one process, each with its own coordinator, each looping withLock around a
// short critical section that writes `enter` and `exit` to the fenced resource. A line `stop` on stdin ends the loops
// after the acquisitions in progress are granted and done; then one JSON summary line is printed and the process exits.
// Usage: node --import tsx contenders.ts (TEMPORAL_ADDRESS, TASK_QUEUE, RESOURCE, NAME, CONTENDERS, SECTION_MS).
import { Fence } from './fence.js';
import { connect, report, requiredEnv, sleep, stopLine } from './client.js';

const resource = requiredEnv('RESOURCE');
const name = requiredEnv('NAME');
const contenders = Number(process.env['CONTENDERS'] ?? 8);
const sectionMs = Number(process.env['SECTION_MS'] ?? 30);

const fence = Fence.open();
const { coordinator, close } = await connect();
const stop = stopLine();

interface Stats {
  grants: number;
  tokens: number[];
  maxWaitMs: number;
  errors: string[];
}

async function contend(writer: string): Promise<Stats> {
  const stats: Stats = { grants: 0, tokens: [], maxWaitMs: 0, errors: [] };
  const { withLock } = coordinator();
  while (!stop.requested) {
    const asked = performance.now();
    try {
      await withLock(resource, async (lease) => {
        stats.maxWaitMs = Math.max(stats.maxWaitMs, performance.now() - asked);
        stats.grants++;
        stats.tokens.push(lease.token);
        if (!(await fence.write(resource, lease, writer, 'enter'))) return;
        await sleep(sectionMs);
        if (lease.signal.aborted) {
          await fence.note(resource, lease.token, writer, 'lease-lost');
          return;
        }
        await fence.write(resource, lease, writer, 'exit');
      });
    } catch (error) {
      stats.errors.push(String(error));
    }
  }
  return stats;
}

report({ ready: name });
const results = await Promise.all(Array.from({ length: contenders }, (_, i) => contend(`${name}-${i}`)));
report({ name, contenders: results });
await fence.close();
await close();
process.exit(0);
