// Cases 2 and 3: a holder killed (SIGKILL) or paused past its ttl (SIGSTOP, then SIGCONT) in its critical section.
// The holder runs in a child process; the next waiter and the worker run in the test process.
import test from 'ava';
import { randomUUID } from 'node:crypto';
import { createCoordinator } from '../../lib/index.js';
import { lockTimings } from '../../lib/workflows/lock-workflow.js';
import { checkLog } from './_helpers/fence.js';
import { spawnHelper, type Child } from './_helpers/children.js';
import { sleep } from './_helpers/client.js';
import { faultSuite } from './_helpers/suite.js';

const quick = process.env['FAULTS_QUICK'] === '1';

const suite = faultSuite('faults-holder');

function startHolder(resource: string, name: string, ttl: number): Child {
  const holder = spawnHelper('holder.ts', name, {
    TASK_QUEUE: suite.env.taskQueue,
    RESOURCE: resource,
    NAME: name,
    TTL: ttl,
    WORK_MS: 100,
  });
  suite.children.push(holder);
  return holder;
}

const entered = (holder: Child) =>
  holder
    .waitFor((message) => typeof message['entered'] === 'number', 60_000, 'its grant')
    .then((message) => message['entered'] as number);

test.serial(
  'a holder SIGKILLed in its critical section: the next waiter is granted within ttl + claim window',
  async (t) => {
    const ttl = 6_000;
    const { acquire } = createCoordinator({ client: suite.env.client, taskQueue: suite.env.taskQueue });
    // Killed before its first renewal (the claim), the grant lapses at the claim window; killed after renewing, at ttl.
    const rounds = [
      { label: 'before its claim', killAfter: 300, bound: Math.min(ttl, lockTimings.claimWindow) },
      { label: 'after renewing', killAfter: 4_000, bound: ttl },
      ...(quick ? [] : [{ label: 'after renewing', killAfter: 9_000, bound: ttl }]),
    ];
    for (const [i, round] of rounds.entries()) {
      const resource = `holder-kill-${randomUUID()}`;
      const holder = startHolder(resource, `holder ${i}`, ttl);
      const holderToken = await entered(holder);
      const enteredAt = performance.now();
      const next = acquire(resource, { ttl });
      await sleep(Math.max(0, round.killAfter - (performance.now() - enteredAt)));
      await holder.kill('SIGKILL');
      const killedAt = performance.now();
      const lease = await next;
      const latency = performance.now() - killedAt;
      t.true(await suite.fence.write(resource, lease.token, 'next', 'enter'));
      t.true(await suite.fence.write(resource, lease.token, 'next', 'exit'));
      await lease.release();

      t.log(
        `killed ${round.label} (${round.killAfter} ms in): next waiter granted ${latency.toFixed(0)} ms after the kill ` +
          `(the lease could last ${round.bound} ms; bound ttl + claim window = ${ttl + lockTimings.claimWindow} ms)`,
      );
      t.true(latency <= ttl + lockTimings.claimWindow, `granted ${latency.toFixed(0)} ms after the kill`);
      t.true(lease.token > holderToken);
      const verdict = checkLog(await suite.fence.log(resource));
      t.deepEqual(verdict.acceptedOverlaps, []);
      t.deepEqual(verdict.rejected, []);
      t.deepEqual(verdict.unfinished, [holderToken], 'only the killed holder left its section open');
    }
  },
);

test.serial(
  'a holder SIGSTOPped past its ttl finds its lease lost or its late write fenced off when it resumes',
  async (t) => {
    const ttl = 2_000;
    const { acquire } = createCoordinator({ client: suite.env.client, taskQueue: suite.env.taskQueue });
    const outcomes: string[] = [];
    for (let round = 0; round < (quick ? 2 : 4); round++) {
      const resource = `holder-stop-${randomUUID()}`;
      const holder = startHolder(resource, `paused holder ${round}`, ttl);
      const holderToken = await entered(holder);
      const next = acquire(resource, { ttl: 30_000 });
      // Pause at a different point of the renewal cycle each round.
      await sleep(300 + round * 350);
      await holder.kill('SIGSTOP');
      const stoppedAt = performance.now();
      const lease = await next;
      const grantedAfter = performance.now() - stoppedAt;
      t.true(await suite.fence.write(resource, lease.token, 'next', 'enter'), 'the next holder enters');
      // The paused holder resumes while the next one is inside its critical section.
      await holder.kill('SIGCONT');
      const outcome = await holder.waitFor((message) => 'outcome' in message, 30_000, 'its outcome');
      t.true(await suite.fence.write(resource, lease.token, 'next', 'exit'), 'the next holder is undisturbed');
      await lease.release();
      const clock = outcome['pastExpiresAt'] ? 'though lease.expiresAt had passed' : 'lease.expiresAt not passed';
      outcomes.push(`${outcome['outcome']}, ${clock} (next granted ${grantedAfter.toFixed(0)} ms into the pause)`);

      t.true(lease.token > holderToken);
      const verdict = checkLog(await suite.fence.log(resource));
      t.deepEqual(verdict.acceptedOverlaps, [], 'no accepted write overlaps another section');
      // The paused holder's only write after the next holder entered, if any, was rejected.
      t.true(verdict.rejected.every((row) => row.token === holderToken && row.op === 'work'));
      t.is(verdict.rejected.length, outcome['outcome'] === 'rejected' ? 1 : 0);
      await holder.exited;
    }
    t.log(`outcomes when the paused holder resumed: ${outcomes.join('; ')}`);
  },
);
