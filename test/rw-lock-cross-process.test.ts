// Read-write locks across processes: readers and writers in child processes, nothing shared between them but the
// Temporal server and the fenced PostgreSQL table they write to (test/faults/_helpers/rw-fence.ts), whose raw record
// is what the checks read.
import test, { type ExecutionContext } from 'ava';
import { startTestEnv, type TestEnv } from './_helpers/temporal.js';
import { killAll, spawnHelper, type Child } from './faults/_helpers/children.js';
import { sleep } from './faults/_helpers/client.js';
import { checkRwLog, RwFence, setupRwFence, type RwMode, type RwVerdict } from './faults/_helpers/rw-fence.js';

let env: TestEnv;
const children: Child[] = [];
test.before(async () => {
  env = await startTestEnv('rw-lock-cross-process');
});
test.after.always(async () => {
  await killAll(children);
  await env?.teardown();
});

interface RwContender {
  readonly name: string;
  readonly mode: RwMode;
  readonly grants: number;
  readonly tokens: readonly number[];
  readonly maxWaitMs: number;
  readonly errors: readonly string[];
}

/** Sections and pauses: readers hold longer than writers, so that they overlap; both pause so writers get in. */
const TIMINGS = { read: { SECTION_MS: 20, PAUSE_MS: 10 }, write: { SECTION_MS: 10, PAUSE_MS: 10 } };

/** Starts an rw-contenders.ts process per mode in `modes` (added to `children`), all on `resource`. */
function startRwContenders(resource: string, modes: readonly RwMode[]): Child[] {
  const contenders = modes.map((mode, i) =>
    spawnHelper('rw-contenders.ts', `${mode}er ${i}`, {
      TASK_QUEUE: env.taskQueue,
      RESOURCE: resource,
      NAME: `${mode[0]}${i}`,
      MODE: mode,
      ...TIMINGS[mode],
    }),
  );
  children.push(...contenders);
  return contenders;
}

/** Tells every contender to stop and returns their summaries; fails if one has not stopped within `timeout` ms. */
async function stopRwContenders(contenders: readonly Child[], timeout: number): Promise<RwContender[]> {
  for (const child of contenders) child.process.stdin!.write('stop\n');
  const summaries = await Promise.all(
    contenders.map((child) => child.waitFor((message) => 'grants' in message, timeout, 'summary after the stop')),
  );
  return summaries as unknown as RwContender[];
}

/** Asserts `found` is empty; a failure shows how many there are and the first few. */
function none(t: ExecutionContext, found: readonly unknown[], what: string): void {
  t.deepEqual(found.slice(0, 3), [], `${what} (${found.length} found, the first 3 shown)`);
}

/**
 * Logs what the run did, then checks it: no writer beside anyone in the raw record, nothing refused or written without
 * a lease, every section finished, no failed acquisition, one token per grant, every grant at the fence, readers
 * together at least once, and every writer granted at least `minWrites` times.
 */
function checkRwRun(t: ExecutionContext, verdict: RwVerdict, stats: readonly RwContender[], minWrites: number): void {
  const tokens = stats.flatMap((contender) => contender.tokens);
  const sectionsOf = (mode: RwMode) => verdict.sections.filter((section) => section.mode === mode).length;
  t.log(
    `${sectionsOf('read')} read and ${sectionsOf('write')} write sections; most readers at once: ${verdict.mostReaders}`,
  );
  t.log(`grants by process: ${stats.map((contender) => `${contender.name} ${contender.grants}`).join(', ')}`);
  t.log(
    `longest wait by process: ${stats.map((contender) => `${contender.name} ${contender.maxWaitMs} ms`).join(', ')}`,
  );
  t.log(
    `writer overlaps ${verdict.writerOverlaps.length}, refused writes ${verdict.refused.length}, ` +
      `unbelieved writes ${verdict.unbelieved.length}, unfinished sections ${verdict.unfinished.length}`,
  );
  none(t, verdict.writerOverlaps, "no writer's section overlapped another section, of either mode");
  none(t, verdict.refused, 'the fence refused no write: nobody wrote beside, or after, a later holder');
  none(t, verdict.unbelieved, 'every write was made while its writer believed it held the lease');
  none(t, verdict.unfinished, 'every section wrote enter and exit');
  t.deepEqual(
    stats.flatMap((contender) => contender.errors),
    [],
    'no acquisition failed',
  );
  t.is(new Set(tokens).size, tokens.length, 'every grant had its own token');
  t.is(verdict.sections.length, tokens.length, 'every grant entered the fenced table');
  t.true(verdict.mostReaders > 1, 'readers held together at least once');
  t.deepEqual(
    stats.filter((contender) => contender.mode === 'write' && contender.grants < minWrites).map(({ name }) => name),
    [],
    `writers granted fewer than ${minWrites} times`,
  );
  t.deepEqual(
    stats.filter((contender) => contender.grants === 0).map(({ name }) => name),
    [],
    'contenders never granted',
  );
}

// Serial: its 8 processes share a small machine with the other test files.
test.serial(
  'readers and writers in separate processes: a writer never beside anyone, readers together, every writer granted',
  async (t) => {
    // 6 processes loop withReadLock around a section that writes `enter`, waits 20 ms and writes `exit` to the fenced
    // table; 2 processes loop withWriteLock around one of 10 ms. Readers that keep coming must neither starve the
    // writers nor be kept apart from each other. RW_CROSS_PROCESS_MS shortens the run while developing.
    const modes: RwMode[] = ['read', 'read', 'read', 'read', 'read', 'read', 'write', 'write'];
    const runMs = Number(process.env['RW_CROSS_PROCESS_MS'] ?? 30_000);
    // Each writer must be granted at least once per 5 s of the run: a starved writer gets next to none, one given its
    // turn in arrival order several times that, even on a busy machine.
    const minWrites = Math.ceil(runMs / 5_000);
    await setupRwFence();
    const fence = RwFence.open();
    t.teardown(() => fence.close());
    const resource = env.id('rw-fenced');
    const contenders = startRwContenders(resource, modes);
    const spawned = performance.now();
    await Promise.all(contenders.map((child) => child.waitFor((message) => 'ready' in message, 120_000, 'ready')));
    const startMs = Math.round(performance.now() - spawned);
    await sleep(runMs);
    const stopping = performance.now();
    const stats = await stopRwContenders(contenders, 30_000);
    const stopMs = Math.round(performance.now() - stopping);

    const verdict = checkRwLog(await fence.log(resource));
    t.log(`run ${runMs} ms; ${modes.length} processes started in ${startMs} ms, stopped in ${stopMs} ms`);
    checkRwRun(t, verdict, stats, minWrites);
  },
);
