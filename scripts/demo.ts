// npm run demo: the library at work, on an embedded Temporal dev server (or the one TEMPORAL_ADDRESS names).
//   1. Service processes updating one shared resource: lost updates without a lock, an exact count with withLock,
//      and a frozen holder's late write refused thanks to the fencing token.
//   2. A per-customer job queue: strict order per customer, customers in parallel, drawn as a timeline.
//   3. Where to look at the workflows in the Temporal Web UI.
// It ends with a summary table; the exit code is 0 only if every check passed.
// Options: --keep keeps the dev server (and its Web UI) up after the summary, until Ctrl-C.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Runtime } from '@temporalio/worker';
import { lockIdPrefix, queueIdPrefix } from '../lib/ids.js';
import { createCoordinator, type Job } from '../lib/index.js';
import { startDevServer } from '../lib/testing/index.js';
import { createWorker } from '../lib/worker.js';
import { FREEZE, STALE_TTL, type ServiceConfig, type ServiceEvent, type ServiceTask } from './demo/protocol.js';
import { chooseResource, describeResource, openResource } from './demo/resource.js';
import { checkRuns, drawTimeline, type JobRun } from './demo/timeline.js';
import { fileLogger, makeLogDirectory } from './logs.js';

const TASK_QUEUE = 'temporal-coordination-demo';
const ID_PREFIX = 'temporal-coordination/';
const DATABASE_URL = process.env['DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
const SERVICE_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'demo', 'service.ts');
const SERVICES = 4;
const INCREMENTS = 10;
const WORK_TIME = 20;
const CUSTOMERS = ['ada', 'bob', 'cy'];
const JOBS_PER_CUSTOMER = 4;
/** How long a job of `customer` number `n` works, in ms: varied, so the customers drift apart. */
const jobTime = (customer: string, n: number) => [220, 340, 160, 280][(CUSTOMERS.indexOf(customer) + n) % 4]!;
const SIMULATED_FAILURE = 'card processor timed out (simulated)';
/** Longest a part may take before it counts as failed. */
const PART_TIMEOUT = 45_000;

const keep = process.argv.includes('--keep');
const unknownArgs = process.argv.slice(2).filter((arg) => arg !== '--keep');
if (unknownArgs.length > 0) {
  console.error(`Unknown argument(s): ${unknownArgs.join(' ')}\nUsage: npm run demo [-- --keep]`);
  process.exit(2);
}

// ---- Output ----

const tty = process.stdout.isTTY === true;
const paint = (code: number) => (text: string) => (tty ? `\x1b[${code}m${text}\x1b[0m` : text);
const bold = paint(1);
const dim = paint(2);
const red = paint(31);
const green = paint(32);
const demoStart = performance.now();
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const print = (line = '') => console.log(line);
const heading = (text: string) => print(`\n${bold(text)}`);
/** A moment of a part, relative to its start. */
const clock = (origin: number) => () => dim(`${((performance.now() - origin) / 1000).toFixed(2).padStart(6)} s`);
/** Shortens a fencing token (start time in ms x 1000 + count) to its last digits, which are the ones that change. */
const short = (token: number) => `…${String(token).slice(-4)}`;

interface Check {
  readonly name: string;
  /** `undefined`: informational, never fails the demo. */
  readonly passed: boolean | undefined;
  readonly detail: string;
}
const checks: Check[] = [];
function check(name: string, passed: boolean | undefined, detail: string): void {
  checks.push({ name, passed, detail });
  const mark = passed === undefined ? dim('info') : passed ? green('PASS') : red('FAIL');
  print(`   ${mark}  ${name}: ${detail}`);
}

/** Rejects with a clear message if `promise` takes longer than `ms`. */
async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${seconds(ms)}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// ---- Service processes ----

/** A demo service: a separate Node process (scripts/demo/service.ts) that performs tasks and reports events. */
class Service {
  private readonly child: ChildProcess;
  /** Events of the current task (or, before the first task, of the start-up). */
  private seen: ServiceEvent[] = [];
  private readonly waiting = new Set<() => void>();
  private stderr = '';
  private hasExited = false;
  readonly exited: Promise<number>;
  onEvent: (event: ServiceEvent) => void = () => {};

  constructor(
    readonly name: string,
    config: ServiceConfig,
  ) {
    this.child = spawn(process.execPath, [...process.execArgv, SERVICE_SCRIPT], {
      env: { ...process.env, DEMO_SERVICE: JSON.stringify(config) },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.child.stderr!.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      let event: ServiceEvent;
      try {
        event = JSON.parse(line) as ServiceEvent;
      } catch {
        return; // not ours
      }
      this.seen.push(event);
      this.onEvent(event);
      for (const wake of this.waiting) wake();
    });
    this.exited = new Promise((resolve) => this.child.once('close', (code) => resolve(code ?? 1)));
    void this.exited.then(() => {
      this.hasExited = true;
      for (const wake of this.waiting) wake();
    });
  }

  /** The current task's first event of `type`, past or future; rejects if the task fails or the process exits. */
  next<T extends ServiceEvent['type']>(type: T): Promise<ServiceEvent & { type: T }> {
    return new Promise((resolve, reject) => {
      const look = () => {
        const found = this.seen.find((event) => event.type === type);
        const error = this.seen.find((event) => event.type === 'error');
        if (found) resolve(found as ServiceEvent & { type: T });
        else if (error?.type === 'error') reject(new Error(`${this.name}: ${error.message}`));
        else if (this.hasExited) reject(new Error(`${this.name} exited: ${this.stderr.trim().slice(-500)}`));
        else return;
        this.waiting.delete(look);
      };
      this.waiting.add(look);
      look();
    });
  }

  /** Starts a task; `onEvent` sees its events. */
  start(task: ServiceTask, onEvent: (event: ServiceEvent) => void = () => {}): void {
    this.seen = [];
    this.onEvent = onEvent;
    this.child.stdin!.write(`${JSON.stringify(task)}\n`);
  }

  /** Ends the process (its stdin) and waits for it. */
  async close(): Promise<void> {
    this.child.stdin!.end();
    const code = await this.exited;
    if (code !== 0) throw new Error(`${this.name} exited with code ${code}: ${this.stderr.trim().slice(-500)}`);
  }

  kill(): void {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}

// ---- Start: server, worker, resource ----

// The dev server's and the worker's logs go to files (the queue job that fails on purpose logs a warning, for one),
// so the demo's output is its own.
const logDir = makeLogDirectory('demo');
Runtime.install({
  logger: fileLogger(join(logDir, 'worker.log')),
  telemetryOptions: { logging: { filter: { core: 'WARN', other: 'ERROR' }, forward: {} } },
});

const run = randomBytes(3).toString('hex');
print(bold('temporal-coordination demo'));
print(dim(`run ${run}: cluster-wide locks and per-key job queues, each one a Temporal workflow`));

heading('Setting up');
print(
  process.env['TEMPORAL_ADDRESS']
    ? ` • Temporal server: ${process.env['TEMPORAL_ADDRESS']} (TEMPORAL_ADDRESS)`
    : ' • Starting a Temporal dev server, with its Web UI...',
);
let started = performance.now();
const server = await startDevServer({ headless: false, logFile: join(logDir, 'dev-server.log') });
const uiUrl = server.uiUrl;
if (!process.env['TEMPORAL_ADDRESS']) {
  const version = server.version === undefined ? '' : ` (Temporal server ${server.version})`;
  print(` • Dev server${version} ready at ${server.address} in ${seconds(performance.now() - started)}`);
}
print(` • Logs of the ${process.env['TEMPORAL_ADDRESS'] ? '' : 'dev server and the '}worker: ${dim(logDir)}`);
if (uiUrl) print(` • Web UI: ${bold(uiUrl)} (open it now to watch the workflows; it lives as long as the demo)`);

const services: Service[] = [];
const cleanups: (() => Promise<unknown>)[] = [async () => services.forEach((service) => service.kill())];
const cleanUp = async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
};
cleanups.push(() => server.stop());
/** Set while `--keep` holds the server up after the summary: Ctrl-C then ends the demo normally. */
let onKeptInterrupt: (() => void) | undefined;
process.on('SIGINT', () => {
  if (onKeptInterrupt) onKeptInterrupt();
  else void cleanUp().finally(() => process.exit(130));
});

const resourceSpec = await chooseResource(DATABASE_URL, join(tmpdir(), `temporal-coordination-demo-${run}.json`));
const resource = await openResource(resourceSpec);
const cells = { unlocked: `${run}:counter-unlocked`, locked: `${run}:counter-locked`, account: `${run}:account` };
cleanups.push(async () => {
  await resource.remove(Object.values(cells));
  await resource.close();
});
print(` • Shared resource: ${describeResource(resourceSpec)}`);

/** Queue jobs' attempts, recorded by the handler as the worker runs them. */
const jobRuns = new Map<string, JobRun>();
const queueKey = (customer: string) => `customer:${customer}-${run}`;
started = performance.now();
const nativeConnection = await NativeConnection.connect({ address: server.address });
const worker = await createWorker({
  connection: nativeConnection,
  namespace: server.namespace,
  taskQueue: TASK_QUEUE,
  jobs: {
    async processOrder(customer: string, n: number) {
      const runOf = jobRuns.get(`${customer}#${n}`) ?? { customer, n, attempts: [] };
      jobRuns.set(`${customer}#${n}`, runOf);
      const attempt = {
        start: performance.now(),
        end: undefined as number | undefined,
        ok: undefined as boolean | undefined,
      };
      runOf.attempts.push(attempt);
      await sleep(jobTime(customer, n));
      attempt.end = performance.now();
      attempt.ok = !(customer === 'bob' && n === 2 && runOf.attempts.length === 1);
      if (!attempt.ok) throw new Error(SIMULATED_FAILURE);
      return `order ${customer}#${n} processed`;
    },
  },
});
const workerRunning = worker.run();
cleanups.push(async () => {
  worker.shutdown();
  await workerRunning;
  await nativeConnection.close();
});
print(
  ` • Worker ready on task queue ${TASK_QUEUE} in ${seconds(performance.now() - started)} (it hosts the workflows)`,
);

const connection = await Connection.connect({ address: server.address });
cleanups.push(() => connection.close());
const coordinator = createCoordinator({
  client: new Client({ connection, namespace: server.namespace }),
  taskQueue: TASK_QUEUE,
  idPrefix: ID_PREFIX,
});

// ---- 1. The problem and the fix ----

const lockId = `demo-counter-${run}`;
const accountLockId = `demo-account-${run}`;
const task = (kind: ServiceTask['kind'], key: string, id: string, amount: number): ServiceTask => ({
  kind,
  key,
  lockId: id,
  amount,
  workTime: WORK_TIME,
});

async function problemAndFix(): Promise<void> {
  heading('1. The problem and the fix');
  print(
    `   ${SERVICES} service processes each add 1 to a shared counter ${INCREMENTS} times: read it, work ${WORK_TIME} ms, ` +
      'write it back.',
  );
  started = performance.now();
  const config = {
    resource: resourceSpec,
    address: server.address,
    namespace: server.namespace,
    taskQueue: TASK_QUEUE,
  };
  services.push(...Array.from({ length: SERVICES }, (_, i) => new Service(`service-${i + 1}`, config)));
  await Promise.all([
    resource.reset(cells.unlocked, 0),
    resource.reset(cells.locked, 0),
    resource.reset(cells.account, 100),
  ]);
  await within(PART_TIMEOUT, 'starting the service processes', Promise.all(services.map((s) => s.next('ready'))));
  print(
    `   Started ${services.length} service processes (separate Node processes, each a plain Temporal client) in ` +
      `${seconds(performance.now() - started)}.`,
  );

  const expected = SERVICES * INCREMENTS;
  async function count(label: string, kind: ServiceTask['kind'], cell: string): Promise<number> {
    process.stdout.write(`   ${label.padEnd(22)}`);
    const t0 = performance.now();
    for (const service of services) {
      service.start(task(kind, cell, lockId, INCREMENTS), (event) => {
        if (event.type === 'increment') process.stdout.write('.');
      });
    }
    await within(PART_TIMEOUT, label, Promise.all(services.map((service) => service.next('done'))));
    const { value } = await resource.read(cell);
    print(`  final ${value} of ${expected} in ${seconds(performance.now() - t0)}`);
    return value;
  }

  const withoutLock = await count('a) without a lock', 'unlocked-counter', cells.unlocked);
  const lost = expected - withoutLock;
  const withLock = await count('b) with withLock', 'locked-counter', cells.locked);
  check(
    'without a lock, updates are lost',
    lost > 0 ? true : undefined,
    lost > 0 ? `${lost} of ${expected} increments lost` : 'no update lost this time (the race is timing-dependent)',
  );
  check(
    'with withLock, the count is exact',
    withLock === expected,
    `${withLock} of ${expected}${withLock === expected ? '' : `: ${expected - withLock} LOST`}`,
  );

  print(
    `   c) fencing token: account balance 100. Holder A takes the lock (ttl ${seconds(STALE_TTL)}, no renewal) to ` +
      `withdraw 30,`,
  );
  print(
    `      then freezes for ${seconds(FREEZE)} (a stop-the-world pause). Holder B waits for the lock to withdraw 50. ` +
      'The row refuses stale tokens.',
  );
  const [holderA, holderB] = services as [Service, Service];
  const at = clock(performance.now());
  holderA.start(task('stale-holder', cells.account, accountLockId, -30), (event) => {
    if (event.type === 'granted')
      print(`   ${at()}  A holds the lock, token ${short(event.token)}; reads ${event.value}`);
    if (event.type === 'frozen') print(`   ${at()}  A freezes (no timers, no renewals) for ${seconds(event.ms)}`);
    if (event.type === 'woke') print(`   ${at()}  A wakes up and, unaware its lease lapsed, writes at once`);
    if (event.type === 'wrote') {
      const outcome = event.applied
        ? red('accepted (a stale write!)')
        : green('refused, the row has seen a newer token');
      print(`   ${at()}  A writes ${event.value} with token ${short(event.token)}: ${outcome}`);
    }
    if (event.type === 'lease-lost') print(`   ${at()}  A's lease.signal aborts: ${event.message}`);
  });
  const aGranted = await within(PART_TIMEOUT, 'holder A', holderA.next('granted'));
  await within(PART_TIMEOUT, 'holder A', holderA.next('frozen'));
  holderB.start(task('late-holder', cells.account, accountLockId, -50), (event) => {
    if (event.type === 'granted') {
      print(`   ${at()}  B holds the lock (A's lease lapsed), token ${short(event.token)}; reads ${event.value}`);
    }
    if (event.type === 'wrote') {
      print(
        `   ${at()}  B writes ${event.value} with token ${short(event.token)}: ${event.applied ? 'accepted' : red('refused')}`,
      );
    }
  });
  print(`   ${at()}  B asks for the lock and waits`);
  const [aWrote, bWrote, bGranted] = await within(
    PART_TIMEOUT,
    'the fencing scenario',
    Promise.all([holderA.next('wrote'), holderB.next('wrote'), holderB.next('granted'), holderA.next('done')]),
  );
  await within(PART_TIMEOUT, 'the service processes', Promise.all(services.map((service) => service.close())));
  const account = await resource.read(cells.account);
  const fenced = !aWrote.applied && bWrote.applied && bGranted.token > aGranted.token && account.value === 50;
  check(
    "the frozen holder's late write is refused",
    fenced,
    `balance ${account.value} (B's withdrawal kept; unfenced, A's write would have made it ${aWrote.value})`,
  );
}

// ---- 2. A per-customer queue ----

async function perCustomerQueue(): Promise<void> {
  heading('2. A per-customer job queue');
  const order: string[] = [];
  const jobs: Job<string>[] = [];
  const origin = performance.now();
  for (let n = 1; n <= JOBS_PER_CUSTOMER; n++) {
    for (const customer of CUSTOMERS) {
      jobs.push(
        await coordinator.enqueue<string>(queueKey(customer), 'processOrder', [customer, n], {
          jobId: `${customer}-${n}`,
          retry: { initialInterval: '300ms', maximumAttempts: 3 },
        }),
      );
      order.push(`${customer}#${n}`);
    }
  }
  print(`   Enqueued ${jobs.length} jobs, interleaved: ${order.join(' ')}`);
  print(`   Job bob#2 fails its first attempt on purpose; it is retried in place, and bob#3 waits for it.`);
  let done = 0;
  const progress = setInterval(() => {
    if (!tty) return;
    const running = [...jobRuns.values()]
      .filter((r) => r.attempts.at(-1)?.end === undefined)
      .map((r) => `${r.customer}#${r.n}`);
    process.stdout.write(`\r\x1b[K   ${done}/${jobs.length} done; running now: ${running.join(' ') || '-'}`);
  }, 100);
  let results: string[];
  try {
    results = await within(
      PART_TIMEOUT,
      'the queue jobs',
      Promise.all(jobs.map((job) => job.result().then((result) => (done++, result)))),
    );
  } finally {
    clearInterval(progress);
    if (tty) process.stdout.write('\r\x1b[K');
  }
  print(
    `   All ${results.length} jobs finished in ${seconds(performance.now() - origin)}. Timeline (digit: job n of that customer running, x: an attempt that failed):`,
  );
  const runs = [...jobRuns.values()].sort(
    (a, b) => CUSTOMERS.indexOf(a.customer) - CUSTOMERS.indexOf(b.customer) || a.n - b.n,
  );
  for (const line of drawTimeline(runs, origin, 50)) print(`     ${line}`);
  const { orderViolations, mostCustomersAtOnce, retries } = checkRuns(runs);
  check(
    'each customer in strict order',
    orderViolations.length === 0 && runs.length === jobs.length,
    orderViolations.length === 0
      ? `${runs.length} jobs, none started before its predecessor finished`
      : orderViolations.join('; '),
  );
  check(
    'customers in parallel',
    mostCustomersAtOnce === CUSTOMERS.length,
    `up to ${mostCustomersAtOnce} of ${CUSTOMERS.length} customers had a job running at once`,
  );
  const retry = retries.find((r) => r.job === 'bob#2');
  check(
    'retries happen in place',
    retry !== undefined && retry.attempts === 2 && retry.nextWaited,
    retry
      ? `bob#2 took ${retry.attempts} attempts; bob#3 ${retry.nextWaited ? 'waited for it' : 'DID NOT wait'}`
      : 'bob#2 was not retried',
  );
}

// ---- 3. The Web UI ----

function webUi(): void {
  heading('3. The workflows in the Temporal Web UI');
  const workflowIds = [
    `${lockIdPrefix(ID_PREFIX)}${lockId}`,
    `${lockIdPrefix(ID_PREFIX)}${accountLockId}`,
    ...CUSTOMERS.map((customer) => `${queueIdPrefix(ID_PREFIX)}${queueKey(customer)}`),
  ];
  const base = uiUrl ?? guessUiUrl(server.address);
  if (base) {
    print(
      `   ${bold(`${base}/namespaces/${server.namespace}/workflows`)}${uiUrl ? '' : dim(' (if that server has a Web UI there)')}`,
    );
  } else {
    print(`   The server at ${server.address} came from TEMPORAL_ADDRESS: open its own Web UI.`);
  }
  print('   Each lock and each queue key is one workflow, which completes once idle. This run used:');
  for (const id of workflowIds) print(`     ${id}`);
  if (uiUrl && !keep) {
    print(
      dim('   The dev server stops with the demo: run `npm run demo -- --keep` to keep it up, or start one that stays'),
    );
    print(dim('   with `npx temporal-coordination server` and run the demo with TEMPORAL_ADDRESS=127.0.0.1:7233.'));
  }
}

/** The conventional dev server UI port, for a server on the conventional port 7233. */
function guessUiUrl(address: string): string | undefined {
  const match = /^(.*):7233$/.exec(address);
  return match ? `http://${match[1]}:8233` : undefined;
}

// ---- Run ----

let crashed: unknown;
try {
  await problemAndFix();
  await perCustomerQueue();
  webUi();
} catch (error) {
  crashed = error;
  check('the demo ran to the end', false, error instanceof Error ? error.message : String(error));
}

heading('Summary');
const width = Math.max(...checks.map((c) => c.name.length));
print(`   ${'check'.padEnd(width)}  result  detail`);
print(`   ${'─'.repeat(width)}  ──────  ${'─'.repeat(40)}`);
for (const { name, passed, detail } of checks) {
  const mark = passed === undefined ? dim('info  ') : passed ? green('PASS  ') : red('FAIL  ');
  print(`   ${name.padEnd(width)}  ${mark}  ${detail}`);
}
const failed = checks.filter((c) => c.passed === false).length;
const passed = checks.filter((c) => c.passed === true).length;
print(`   ${'─'.repeat(width)}  ──────  ${'─'.repeat(40)}`);
print(
  `   ${failed === 0 ? green(`${passed} passed`) : red(`${failed} failed`)} in ${seconds(performance.now() - demoStart)}` +
    ` (${resourceSpec.kind === 'postgres' ? 'PostgreSQL' : 'JSON file'} resource, server ${server.address})`,
);
if (crashed) console.error(crashed);

if (keep && uiUrl && !crashed) {
  print(`\nThe dev server stays up (Web UI ${uiUrl}, address ${server.address}); Ctrl-C to stop it.`);
  await new Promise<void>((resolve) => (onKeptInterrupt = resolve));
}
await cleanUp();
process.exit(failed === 0 ? 0 : 1);
