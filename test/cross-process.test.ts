// The guarantees that speak of processes, checked with contenders in child processes: nothing is shared between them
// but the Temporal server (and, for the lock, the fenced PostgreSQL table they write to).
import test from 'ava';
import { startTestEnv, type TestEnv } from './_helpers/temporal.js';
import { killAll, spawnHelper, type Child } from './faults/_helpers/children.js';
import { checkContention, startContention } from './faults/_helpers/contention.js';
import { checkLog, Fence, setupFence } from './faults/_helpers/fence.js';
import { until } from './faults/_helpers/client.js';

let env: TestEnv;
const children: Child[] = [];
test.before(async () => {
  env = await startTestEnv('cross-process');
});
test.after.always(async () => {
  await killAll(children);
  await env?.teardown();
});

interface Section {
  readonly token: number;
  readonly start: number;
  readonly end: number;
  readonly valid: boolean;
}

/** The most sections open at one time; one that ends when another starts does not count as open beside it. */
function mostAtOnce(sections: readonly Section[]): number {
  const edges = sections.flatMap(({ start, end }) => [
    { at: start, step: 1 },
    { at: end, step: -1 },
  ]);
  edges.sort((a, b) => a.at - b.at || a.step - b.step);
  let open = 0;
  let most = 0;
  for (const { step } of edges) most = Math.max(most, (open += step));
  return most;
}

test('a semaphore admits at most limit holders across processes, which never meet the server limit of 10 updates in flight', async (t) => {
  // 18 contenders for 4 slots, so that 14 wait at once: more than the server's 10 updates in flight, were every
  // waiter to block in one. Sections of 500 ms, so that the holders' sections do run side by side.
  const [processes, perProcess, rounds, limit] = [6, 3, 3, 4];
  const id = env.id('semaphore');
  const contenders = Array.from({ length: processes }, (_, i) =>
    spawnHelper('semaphore-contenders.ts', `semaphore contenders ${i}`, {
      TASK_QUEUE: env.taskQueue,
      RESOURCE: id,
      LIMIT: limit,
      COORDINATORS: perProcess,
      ROUNDS: rounds,
      SECTION_MS: 500,
    }),
  );
  children.push(...contenders);
  const results = await Promise.all(
    contenders.map((child) => child.waitFor((message) => 'sections' in message, 120_000, 'its sections')),
  );
  const sections = results.flatMap((result) => result['sections'] as Section[]);
  t.deepEqual(
    results.flatMap((result) => result['errors'] as string[]),
    [],
  );
  t.is(sections.length, processes * perProcess * rounds, 'every section ran');
  t.true(
    sections.every((section) => section.valid),
    'every holder held a valid lease throughout its section',
  );
  t.is(new Set(sections.map((section) => section.token)).size, sections.length, 'every grant had its own token');
  const most = mostAtOnce(sections);
  t.log(`${sections.length} sections in ${processes} processes, at most ${most} at once`);
  t.true(most <= limit, `${most} holders at once`);
  // An update turned away at the in-flight limit makes the server drop the workflow's cached state and abort every
  // other update waiting on it.
  t.deepEqual(
    results.flatMap((result) => result['updateFailures'] as number[]),
    [],
    'gRPC status codes of update calls: 8 is the in-flight limit, 14 an aborted update',
  );
});

test('one holder at a time across processes, checked in the raw write log of a fenced PostgreSQL table', async (t) => {
  // The fault suite's contention run without the faults: 3 processes of 4 contenders loop withLock around a section
  // that writes `enter`, waits 30 ms and writes `exit`, each write logged with what its writer believed, until every
  // contender could have been granted three times.
  const [processes, perProcess] = [3, 4];
  await setupFence();
  const fence = Fence.open();
  t.teardown(() => fence.close());
  const resource = env.id('fenced');
  const started: Child[] = [];
  const contention = startContention(started, { taskQueue: env.taskQueue, resource, processes, perProcess });
  children.push(...started);
  await Promise.all(started.map((child) => child.waitFor((message) => 'ready' in message, 60_000, 'ready')));
  const sections = async () => checkLog(await fence.log(resource)).sections;
  await until(async () => (await sections()) >= 3 * processes * perProcess, 120_000, 'the first sections');
  const stats = await contention.stop();
  const verdict = checkLog(await fence.log(resource));
  t.log(`${verdict.sections} critical sections in ${processes} processes`);
  checkContention(t, verdict, stats, processes * perProcess);
});
