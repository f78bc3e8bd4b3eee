// Every example runs as a user would run it (importing the built package by its name) against the test server, and
// what it prints is checked against what it claims. Examples use the default task queue, as a user would; each runs in
// a namespace of its own, so no other test's worker on that task queue can take its jobs (a worker without the job's
// handler would fail it).
import test from 'ava';
import { execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time.js';
import pg from 'pg';
import { createCoordinator } from '../lib/index.js';
import { ensureBuilt } from '../scripts/ensure-built.js';
import { serverAddress } from './_helpers/temporal.js';

const root = new URL('..', import.meta.url);
const run = promisify(execFile);
const EXAMPLE_TIMEOUT = 90_000;

interface Outcome {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

let connection: Connection;

/** A new namespace on the test server (the dev server makes it usable at once). */
async function freshNamespace(name: string): Promise<string> {
  const namespace = `examples-${name}-${randomUUID().slice(0, 8)}`;
  await connection.workflowService.registerNamespace({
    namespace,
    workflowExecutionRetentionPeriod: msToTs('1 day'),
  });
  return namespace;
}

/** Runs `examples/<name>.ts` to its end, as `npm run example -- <name>` does (with tsx, against dist/). */
async function runExample(name: string): Promise<Outcome> {
  const { address } = serverAddress();
  const namespace = await freshNamespace(name);
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', `examples/${name}.ts`], {
      cwd: root,
      env: { ...process.env, TEMPORAL_ADDRESS: address, TEMPORAL_NAMESPACE: namespace },
      timeout: EXAMPLE_TIMEOUT,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const { code, stdout, stderr } = error as { code: number | null; stdout: string; stderr: string };
    return { code, stdout, stderr };
  }
}

/** The numbers of every match of `pattern`'s first group, in order. */
function numbers(text: string, pattern: RegExp): number[] {
  return [...text.matchAll(pattern)].map((match) => Number(match[1]));
}

const increasing = (values: readonly number[]) => values.every((value, i) => i === 0 || value > values[i - 1]!);

test.before('the package is built, as examples import it by name through dist/', async () => {
  ensureBuilt();
  connection = await Connection.connect({ address: serverAddress().address });
});

test.after.always(async () => {
  await connection?.close();
});

test('every example in examples/ has a smoke test here', (t) => {
  const examples = readdirSync(new URL('examples/', root))
    .filter((file) => file.endsWith('.ts'))
    .sort();
  t.deepEqual(examples, [
    'await-using.ts',
    'fencing-token.ts',
    'metrics.ts',
    'per-key-queue.ts',
    'semaphore.ts',
    'with-lock.ts',
    'worker.ts',
    'workflow-lock.ts',
  ]);
});

test.serial('with-lock: holders take turns with increasing tokens, and waitTimeout gives up', async (t) => {
  const { code, stdout, stderr } = await runExample('with-lock');
  t.is(code, 0, stderr);
  const tokens = numbers(stdout, /holds invoice:42 with fencing token (\d+)/g);
  t.is(tokens.length, 3, stdout);
  t.true(increasing(tokens), stdout);
  t.regex(stdout, /holders at once: at most 1; tokens strictly increasing: yes/);
  t.regex(stdout, /withLock returned: request-a sent the invoice; request-b sent the invoice; request-c sent/);
  t.regex(stdout, /gave up waiting: LockTimeoutError: Timed out after 500 ms waiting for `invoice:42`/);
});

test.serial('await-using: the lease renews past its ttl and is released at the end of the block', async (t) => {
  const { code, stdout, stderr } = await runExample('await-using');
  t.is(code, 0, stderr);
  const [token] = numbers(stdout, /acquired report:daily: token (\d+)/g);
  t.regex(stdout, new RegExp(`inside the block, lockStatus: 1 holder\\(s\\) \\(tokens: ${token}\\)`));
  t.regex(stdout, /still held after 5 s \(longer than the ttl\): lease.signal.aborted = false/);
  t.regex(stdout, /after the block, lockStatus: 0 holder\(s\)/);
  t.regex(stdout, /the block threw \(the report generator crashed\); lockStatus: 0 holder\(s\)/);
});

test.serial('semaphore: at most 2 holders at once, 4 waiting while both slots are taken', async (t) => {
  const { code, stdout, stderr } = await runExample('semaphore');
  t.is(code, 0, stderr);
  t.is(numbers(stdout, /render-(\d) starts/g).length, 6, stdout);
  t.deepEqual(
    numbers(stdout, /GPUs busy: (\d) of 2/g).filter((busy) => busy > 2),
    [],
  );
  t.regex(stdout, /lockStatus\('gpu-pool'\): limit 2, 2 holders, \d waiting/);
  t.regex(stdout, /all 6 renders done; at most 2 ran at once/);
});

test.serial('per-key-queue: each customer in order, retries in place, customers in parallel', async (t) => {
  const { code, stdout, stderr } = await runExample('per-key-queue');
  t.is(code, 0, stderr);
  // Per customer: starts and ends alternate, in invoice order (a retry restarts the same invoice).
  for (const [customer, invoices] of [
    ['alice', ['A-1', 'A-2', 'A-3']],
    ['bob', ['B-1', 'B-2', 'B-3']],
  ] as const) {
    const events = [...stdout.matchAll(new RegExp(`${customer}\\s+(\\S+) (starts|done|failed)`, 'g'))].map(
      (match) => `${match[1]} ${match[2]}`,
    );
    const expected = invoices.flatMap((invoice) =>
      invoice === 'B-2'
        ? [`${invoice} starts`, `${invoice} failed`, `${invoice} starts`, `${invoice} done`]
        : [`${invoice} starts`, `${invoice} done`],
    );
    t.deepEqual(events, expected, stdout);
  }
  // In parallel: bob's first invoice starts before alice's first one is done.
  const lines = stdout.split('\n');
  const aliceDone = lines.findIndex((line) => /alice A-1 done/.test(line));
  const bobStarts = lines.findIndex((line) => /bob\s+B-1 starts/.test(line));
  t.true(bobStarts >= 0 && bobStarts < aliceDone, stdout);
  t.regex(stdout, /A-1 ran 1 time\(s\); B-2 took 2 attempts/);
  t.regex(stdout, /re-enqueueing A-1 returned job A-1\/\w+ \(not run twice\)/);
  t.regex(stdout, /JobFailedError: Job `[\w-]+` on queue `customer:carol` failed after 1 attempt\(s\): carol still/);
  t.regex(stdout, /customer:dave paused: true, pending: 1, D-1 is pending/);
  t.regex(stdout, /after resumeQueue: D-1 sent to dave/);
});

test.serial('metrics: the console exporter prints the lock and job metrics, and spans were recorded', async (t) => {
  const { code, stdout, stderr } = await runExample('metrics');
  t.is(code, 0, stderr);
  t.regex(stdout, /jobs done: INV-1 sent, INV-2 sent/);
  t.regex(stdout, /spans: 5 lock waits, 4 holds, 2 enqueues, 3 job attempts/);
  for (const name of [
    'coordination.lock.wait.duration',
    'coordination.lock.hold.duration',
    'coordination.lock.grants',
    'coordination.queue.enqueued',
    'coordination.queue.wait.duration',
    'coordination.job.duration',
    'coordination.job.attempts',
  ]) {
    t.true(stdout.includes(`name: '${name}'`), `${name} printed`);
  }
  t.regex(stdout, /'coordination.resource.group': 'invoice'/);
  t.regex(stdout, /'coordination.lock.outcome': 'timeout'/);
  t.regex(stdout, /'coordination.job.outcome': 'retried'/);
});

test.serial('fencing-token: the stale holder is refused by the PostgreSQL row', async (t) => {
  const { code, stdout, stderr } = await runExample('fencing-token');
  t.is(code, 0, stderr);
  const [aToken] = numbers(stdout, /A holds account:7 with token (\d+)/g);
  const [bToken] = numbers(stdout, /B holds account:7 with token (\d+): 100 - 50 -> written/g);
  if (aToken === undefined || bToken === undefined) return t.fail(stdout);
  t.true(bToken > aToken);
  t.regex(stdout, /A wakes up; lease lost: Lease \d+ on `account:7` is lost \(expired\)/);
  t.regex(stdout, /A writes 100 - 30 with token \d+ -> refused \(a newer token wrote\)/);
  // The row itself says who wrote last.
  const db = new pg.Client({
    connectionString: process.env['DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test',
  });
  await db.connect();
  try {
    const { rows } = await db.query<{ balance: number; fencing_token: string }>(
      `SELECT balance, fencing_token FROM fencing_example_accounts WHERE id = 'account-7'`,
    );
    t.is(rows[0]?.balance, 50);
    t.is(Number(rows[0]?.fencing_token), bToken);
  } finally {
    await db.end();
  }
});

test.serial('worker: runs jobs enqueued by another process, and stops cleanly on SIGTERM', async (t) => {
  const { address } = serverAddress();
  const namespace = await freshNamespace('worker');
  const child = spawn(process.execPath, ['--import', 'tsx', 'examples/worker.ts'], {
    cwd: root,
    env: { ...process.env, TEMPORAL_ADDRESS: address, TEMPORAL_NAMESPACE: namespace },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
  const lineWaiters = new Set<() => void>();
  createInterface({ input: child.stdout }).on('line', (line) => {
    stdout += `${line}\n`;
    for (const check of lineWaiters) check();
  });
  /** Resolves once the worker has printed a line matching `pattern`. */
  const printed = (pattern: RegExp) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (pattern.test(stdout)) {
          lineWaiters.delete(check);
          resolve();
        }
      };
      lineWaiters.add(check);
      check();
      void exited.then(() => reject(new Error(`the worker exited before printing ${pattern}: ${stderr}`)));
    });
  const timer = setTimeout(() => child.kill('SIGKILL'), EXAMPLE_TIMEOUT);
  try {
    await printed(/^worker running/m);
    t.regex(stdout, new RegExp(`worker running: namespace ${namespace}, task queue temporal-coordination; Ctrl-C`));
    // A plain client, with no worker of its own, as in another service.
    const { enqueue } = createCoordinator({ client: new Client({ connection, namespace }) });
    const invoice = `INV-${randomUUID().slice(0, 8)}`;
    const job = await enqueue<string>('customer:7', 'sendInvoice', [invoice]);
    t.is(await job.result(), `invoice ${invoice} sent`);
    await printed(new RegExp(`sendInvoice\\("${invoice}"\\)`));
    child.kill('SIGTERM');
    t.is(await exited, 0, stderr);
    t.regex(stdout, /worker stopped/);
  } finally {
    clearTimeout(timer);
    child.kill('SIGKILL');
  }
});

test.serial('workflow-lock: workflows and a plain service share one lock, and no update is lost', async (t) => {
  const { code, stdout, stderr } = await runExample('workflow-lock');
  t.is(code, 0, stderr);
  const transferTokens = numbers(stdout, /transfer of \d+ done; it debited alice with fencing token (\d+)/g);
  const [depositToken] = numbers(stdout, /service deposited 5 into alice with fencing token (\d+)/g);
  t.is(transferTokens.length, 3, stdout);
  t.is(new Set([...transferTokens, depositToken]).size, 4, stdout);
  t.deepEqual(numbers(stdout, /notify bob: received (\d+) from alice/g).sort(), [10, 20, 30].sort());
  t.regex(stdout, /balances: alice 45, bob 60/);
  t.regex(stdout, /no update lost: yes/);
  t.regex(stdout, /one token per holder of account:alice: yes/);
});

test.serial('the bin entry runs the built CLI', async (t) => {
  const { stdout } = await run(process.execPath, ['dist/cli.js', '--help'], { cwd: root });
  t.regex(stdout, /Usage: temporal-coordination <command>/);
  const { address } = serverAddress();
  const status = await run(process.execPath, ['dist/cli.js', 'status', 'lock', `idle-${randomUUID()}`], {
    cwd: root,
    env: { ...process.env, TEMPORAL_ADDRESS: address },
  });
  t.regex(status.stdout, /: idle \(no workflow running/);
});
