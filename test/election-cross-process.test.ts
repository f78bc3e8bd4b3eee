// Leader election across processes: candidates and an observer in child processes, the leader killed for real.
// Nothing is shared between them but the Temporal server; the worker runs in this process.
import test from 'ava';
import { lockTimings } from '../lib/workflows/index.js';
import { startTestEnv, type TestEnv } from './_helpers/temporal.js';
import { killAll, spawnHelper, type Child, type Message } from './faults/_helpers/children.js';
import { sleep, until } from './faults/_helpers/client.js';

let env: TestEnv;
const children: Child[] = [];
test.before(async () => {
  env = await startTestEnv('election-cross-process');
});
test.after.always(async () => {
  await killAll(children);
  await env?.teardown();
});

/** The candidates' ttl: short, so that a dead leader is followed soon. */
const TTL = 3_000;
/** What a loaded 2-core machine may add to a hand-over: workflow tasks, the grant's answer, a child's report. */
const MARGIN = 5_000;

interface Observed {
  readonly leader: string | null;
  readonly term: number | null;
}

const isState = (message: Message) => 'leader' in message;
const leads = (message: Message) => 'leading' in message;
const sameState = (a: Observed, b: Observed) => a.leader === b.leader && a.term === b.term;

/** What the observer has printed so far: every state it saw, in order. */
function observed(observer: Child): Observed[] {
  return observer.messages.filter(isState).map(({ leader, term }) => ({ leader, term }) as Observed);
}

/** Those of `candidates` that have reported they lead, by name. */
function leading(candidates: readonly Child[]): string[] {
  return candidates.filter((candidate) => candidate.messages.some(leads)).map((candidate) => candidate.name);
}

/** The candidate among `candidates` that reports it leads first, with its term, and how long that took. */
async function nextLeader(candidates: readonly Child[], timeout: number) {
  const since = performance.now();
  const [candidate, message] = await Promise.any(
    candidates.map(async (candidate) => [candidate, await candidate.waitFor(leads, timeout, 'leadership')] as const),
  );
  return { candidate, term: message['term'] as number, ms: Math.round(performance.now() - since) };
}

test('three processes campaign and the leader is killed: the next leads within ttl and the claim window, and an observer in a fourth process sees every change once, in term order', async (t) => {
  t.timeout(120_000);
  const election = env.id('election');
  const common = { TASK_QUEUE: env.taskQueue, ELECTION: election };
  const observer = spawnHelper('observer.ts', 'observer', common);
  const candidates = ['first', 'second', 'third'].map((value) =>
    spawnHelper('candidate.ts', `candidate ${value}`, { ...common, VALUE: value, TTL }),
  );
  children.push(observer, ...candidates);
  await Promise.all([
    observer.waitFor(isState, 60_000, 'its first state'),
    ...candidates.map((candidate) => candidate.waitFor((message) => 'ready' in message, 60_000, 'ready')),
  ]);

  // One campaign at a time, each once the one before has reached the server: they lead in this order.
  for (const candidate of candidates) {
    candidate.process.stdin!.write('campaign\n');
    await candidate.waitFor((message) => 'sent' in message, 30_000, 'its campaign sent');
  }
  const [first, second, third] = candidates as [Child, Child, Child];
  const firstTerm = (await first.waitFor(leads, 30_000, 'leadership'))['term'] as number;
  // Led for a ttl, the first has claimed its grant and renewed it (every ttl / 3): killed now, it is a leader whose
  // lease runs out, not a grant never claimed.
  await sleep(TTL);

  // The killed leader's lease runs out at most ttl after its last renewal, which came before the kill; the election
  // then grants it to the head of the queue at once. The grant must reach its candidate, and be claimed, within the
  // claim window, else it lapses: a candidate that follows the dead leader at all does so within ttl + the claim
  // window of the kill, plus what a loaded machine adds to the timer, the answer and the report.
  const bound = TTL + lockTimings.claimWindow + MARGIN;
  t.deepEqual(leading([second, third]), [], 'nobody else led beside the first');
  await first.kill('SIGKILL');
  const failover = await nextLeader([second, third], 60_000);
  t.is(failover.candidate, second, 'the next candidate, in campaign order, leads');
  t.true(failover.ms <= bound, `led ${failover.ms} ms after the kill; bound ${bound} ms`);
  t.true(firstTerm < failover.term, 'the killed leader had the lower term');

  t.deepEqual(leading([third]), [], 'the third did not lead beside the second');
  second.process.stdin!.write('resign\n');
  const handover = await nextLeader([third], 30_000);
  t.true(failover.term < handover.term, 'terms increase');
  third.process.stdin!.write('resign\n');
  await third.waitFor((message) => 'resigned' in message, 30_000, 'its resignation');

  // Until the observer sees the third leader go.
  await until(
    async () => {
      const states = observed(observer);
      return states.some(({ term }) => term === handover.term) && states.at(-1)?.term === null;
    },
    15_000,
    'the observer sees nobody lead after the last leader',
    async () => JSON.stringify(observed(observer)),
  );
  observer.process.stdin!.write('stop\n');
  await observer.waitFor((message) => 'stopped' in message, 15_000, 'its stop');

  const states = observed(observer);
  t.log(`first (term ${firstTerm}) killed; second led ${failover.ms} ms later, bound ${bound} ms`);
  t.log(`second resigned; third led ${handover.ms} ms later`);
  t.log(`observed: ${states.map(({ leader, term }) => (term === null ? 'nobody' : `${leader}@${term}`)).join(', ')}`);

  t.deepEqual(
    candidates.flatMap((candidate) => candidate.messages.filter((message) => 'lost' in message)),
    [],
    'no living leader lost its leadership',
  );
  const repeated = states.filter((state, i) => i > 0 && sameState(state, states[i - 1]!));
  t.deepEqual(repeated, [], 'no state seen twice in a row');
  t.deepEqual(
    states.filter(({ term }) => term !== null),
    [
      { leader: 'first', term: firstTerm },
      { leader: 'second', term: failover.term },
      { leader: 'third', term: handover.term },
    ],
    'each leader seen once, in the order they led, terms increasing',
  );
  t.like(states[0], { leader: null, term: null }, 'nobody led when the observer started');
  t.like(states.at(-1), { leader: null, term: null }, 'nobody leads at the end');
});
