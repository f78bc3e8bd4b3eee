// One lock holder in a child process, for the cases that kill, stop or strand it. It prints JSON lines:
// `{"requesting":true}`, then `{"entered":token,"grantedAt":ms}` once granted (`grantedAt`: its `Date.now()` when the
// grant reached it) and entered at the fenced resource; then it writes `work` every WORK_MS while it holds. When it
// finds its lease lost (`lease.signal` aborted) or a write rejected by the fence, it prints
// `{"outcome":"aborted"|"rejected","token":...,"pastExpiresAt":...}`, releases (a stale release must harm no one) and
// exits.
// Usage: node --import tsx holder.ts (TEMPORAL_ADDRESS, TASK_QUEUE, RESOURCE, NAME, TTL, WORK_MS).
import { Fence } from './fence.js';
import { connect, report, requiredEnv, sleep } from './client.js';

const resource = requiredEnv('RESOURCE');
const name = requiredEnv('NAME');
const ttl = Number(process.env['TTL'] ?? 30_000);
const workMs = Number(process.env['WORK_MS'] ?? 100);

const fence = Fence.open();
const { coordinator, close } = await connect();
// The `entered` report must follow the grant closely (a case kills the holder on it, before its claim goes out).
await fence.warm();
report({ requesting: true });
const lease = await coordinator().acquire(resource, { ttl });
const grantedAt = Date.now();
if (!(await fence.write(resource, lease, name, 'enter'))) throw new Error(`enter with ${lease.token} rejected`);
report({ entered: lease.token, grantedAt });
let outcome: 'aborted' | 'rejected';
// Whether, at the decisive check, the lease's own clock (`expiresAt`) already said it had run out.
let pastExpiresAt: boolean;
for (;;) {
  await sleep(workMs);
  pastExpiresAt = lease.expiresAt.getTime() <= Date.now();
  if (lease.signal.aborted) {
    outcome = 'aborted';
    await fence.note(resource, lease.token, name, 'lease-lost');
    break;
  }
  if (!(await fence.write(resource, lease, name, 'work'))) {
    outcome = 'rejected';
    break;
  }
}
report({ outcome, token: lease.token, pastExpiresAt, reason: String(lease.signal.reason) });
await lease.release();
await fence.close();
await close();
process.exit(0);
