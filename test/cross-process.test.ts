// The guarantees that speak of processes, checked with contenders in child processes: nothing is shared between them
// but the Temporal server (and, for the lock, the fenced PostgreSQL table they write to).
import test, { type ExecutionContext } from 'ava';
import { startTestEnv, type TestEnv } from './_helpers/temporal.js';
import { killAll, spawnHelper, type Child } from './faults/_helpers/children.js';
import { checkContention, startContention } from './faults/_helpers/contention.js';
import { checkLog, Fence, setupFence, type Verdict } from './faults/_helpers/fence.js';
import { sleep, until } from './faults/_helpers/client.js';

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

interface PairContender {
  readonly name: string;
  readonly sections: number;
  readonly tokens: Readonly<Record<string, number[]>>;
  readonly maxWaitMs: number;
  readonly errors: string[];
}

/** Starts a pair-contenders.ts process per contender (added to `children`), each locking pairs of `resources`. */
function startPairContenders(resources: readonly string[], processes: number): Child[] {
  const contenders = Array.from({ length: processes }, (_, i) =>
    spawnHelper('pair-contenders.ts', `pair contenders ${i}`, {
      TASK_QUEUE: env.taskQueue,
      RESOURCES: resources.join(','),
      NAME: `p${i}`,
      SECTION_MS: 5,
    }),
  );
  children.push(...contenders);
  return contenders;
}

/** Tells every contender to stop and returns their summaries; fails if one has not stopped within `timeout` ms. */
async function stopPairContenders(contenders: readonly Child[], timeout: number): Promise<PairContender[]> {
  for (const child of contenders) child.process.stdin!.write('stop\n');
  const summaries = await Promise.all(
    contenders.map((child) => child.waitFor((message) => 'sections' in message, timeout, 'summary after the stop')),
  );
  return summaries as unknown as PairContender[];
}

/** Sections of pairs finished by each of `writers` at or after `since` (the writers' clock): two `exit` writes each. */
async function pairSectionsSince(
  fence: Fence,
  resources: readonly string[],
  writers: readonly string[],
  since: number,
): Promise<number[]> {
  const logs = await Promise.all(resources.map((resource) => fence.log(resource)));
  const exits = logs.flat().filter((row) => row.op === 'exit' && row.accepted && (row.checkedAt ?? 0) >= since);
  return writers.map((writer) => exits.filter((row) => row.writer === writer).length / 2);
}

/** What `checkContention` checks of one resource, for one resource of the pairs: `tokens` are its grants. */
function checkPairResource(t: ExecutionContext, resource: string, verdict: Verdict, tokens: readonly number[]): void {
  t.deepEqual(verdict.overlaps, [], `${resource}: no two holders believed they held at once, grants in token order`);
  t.deepEqual(verdict.unbelieved, [], `${resource}: every write made while its writer believed it held the lease`);
  t.deepEqual(verdict.openedOverOpen, [], `${resource}: no section entered while another was open`);
  t.deepEqual(verdict.rejected, [], `${resource}: no holder wrote after a later holder entered`);
  t.deepEqual(verdict.unfinished, [], `${resource}: every section finished`);
  t.is(new Set(tokens).size, tokens.length, `${resource}: every grant had its own token`);
  t.is(verdict.sections, tokens.length, `${resource}: every grant entered the fenced resource`);
}

// Serial: its 8 processes, beside the other tests' 9, would slow every lock hand-over on a small machine.
test.serial(
  'processes that lock random overlapping pairs of resources never deadlock, and never hold a resource together',
  async (t) => {
    // 8 processes, each looping withLocks on 2 of 5 resources picked at random and handed over in random order, around
    // a section that writes `enter` to both fenced resources, waits 5 ms and writes `exit` to both. Two pairs sharing
    // a resource are taken in opposite orders all the time: only the one order withLocks takes them in keeps every
    // process moving. CROSS_PROCESS_PAIRS_MS shortens the run while developing.
    const [processes, resourceCount] = [8, 5];
    const runMs = Number(process.env['CROSS_PROCESS_PAIRS_MS'] ?? 30_000);
    // A deadlock stalls the processes in it for good, and in time every other; one wait for a pair can take seconds on
    // a busy machine, so a section is asked of every process in the whole second half of the run, and the stop (which
    // sends no new requests) is given 30 s.
    const [lastPartMs, stopBoundMs] = [Math.round(runMs / 2), 30_000];
    await setupFence();
    const fence = Fence.open();
    t.teardown(() => fence.close());
    const resources = Array.from({ length: resourceCount }, (_, i) => env.id(`pair-${i}`));
    const contenders = startPairContenders(resources, processes);
    const spawned = performance.now();
    await Promise.all(contenders.map((child) => child.waitFor((message) => 'ready' in message, 120_000, 'ready')));
    const startMs = Math.round(performance.now() - spawned);
    await sleep(runMs - lastPartMs);
    const lastPart = Date.now();
    await sleep(lastPartMs);

    // Progress, read at the fence before the stop.
    const names = contenders.map((_, i) => `p${i}`);
    const lastSections = await pairSectionsSince(fence, resources, names, lastPart);
    t.deepEqual(
      names.filter((_, i) => lastSections[i]! < 1),
      [],
      `processes that finished no section in the last ${lastPartMs} ms`,
    );

    const stopping = performance.now();
    const stats = await stopPairContenders(contenders, stopBoundMs);
    const stopMs = Math.round(performance.now() - stopping);

    const verdicts = await Promise.all(resources.map(async (resource) => checkLog(await fence.log(resource))));
    for (const [i, verdict] of verdicts.entries()) {
      const tokens = stats.flatMap((contender) => contender.tokens[resources[i]!] ?? []);
      checkPairResource(t, `resource ${i}`, verdict, tokens);
    }
    t.deepEqual(
      stats.flatMap((contender) => contender.errors),
      [],
      'no acquisition failed',
    );
    const total = stats.reduce((sum, contender) => sum + contender.sections, 0);
    t.log(`${total} sections in ${processes} processes on ${resourceCount} resources in ${runMs} ms`);
    t.log(`sections by process: ${stats.map((contender) => contender.sections).join(', ')}`);
    t.log(`sections by resource: ${verdicts.map((verdict) => verdict.sections).join(', ')}`);
    t.log(`sections by process in the last ${lastPartMs} ms: ${lastSections.join(', ')}`);
    t.log(
      `started in ${startMs} ms; longest wait ${Math.max(...stats.map((contender) => contender.maxWaitMs))} ms; ` +
        `stopped in ${stopMs} ms`,
    );
  },
);
