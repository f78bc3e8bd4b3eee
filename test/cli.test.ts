// The `temporal-coordination` command, run as a separate process from its source (test/examples.test.ts runs the
// built one), against the test server. One at a time: each run starts a Node process, and a CPU-starved machine could
// delay this file's own leases past their claim window.
import test from 'ava';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { Connection } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { createCoordinator, LeaseLostError, LockTimeoutError, type Lease } from '../lib/index.js';
import { freePort } from './_helpers/net.js';
import { aborted, serverAddress, startTestEnv, type TestEnv } from './_helpers/temporal.js';

const root = new URL('..', import.meta.url);

interface Outcome {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** How long the command took, in ms. */
  readonly took: number;
}

/** Runs the CLI with `args` against the test server (unless `env` says otherwise) and waits for it to exit. */
function cli(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<Outcome> {
  const { address, namespace } = serverAddress();
  const started = performance.now();
  const child = spawn(process.execPath, ['--import', 'tsx', 'lib/cli.ts', ...args], {
    cwd: root,
    env: { ...process.env, TEMPORAL_ADDRESS: address, TEMPORAL_NAMESPACE: namespace, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  return new Promise((resolve) =>
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, took: performance.now() - started });
    }),
  );
}

/** Polls `condition` every 50 ms for up to 20 s, then fails naming `what`. */
async function waitUntil(condition: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

let env: TestEnv;

test.before(async () => {
  env = await startTestEnv('cli', {
    jobs: {
      async fail(message: string) {
        throw new Error(message);
      },
      async noop() {},
    },
  });
});

test.after.always(async () => {
  await env?.teardown();
});

// ---- Usage ----

test.serial('without a command, it prints the usage and exits with code 2', async (t) => {
  const { code, stderr } = await cli([]);
  t.is(code, 2);
  t.regex(stderr, /Which command\?/);
  t.regex(
    stderr,
    /Usage: temporal-coordination server \| status lock\|queue\|election <id> \| cancel <key> <jobId> \| release <id>/,
  );
});

test.serial('an unknown command is named in the error, with exit code 2', async (t) => {
  const { code, stderr } = await cli(['frobnicate']);
  t.is(code, 2);
  t.regex(stderr, /Unknown command `frobnicate`/);
});

test.serial('an unknown option is a usage error, not ignored', async (t) => {
  const unknown = await cli(['status', 'lock', 'x', '--colour']);
  t.is(unknown.code, 2);
  t.regex(unknown.stderr, /Unknown option '--colour'/);
  const misplaced = await cli(['status', 'lock', 'x', '--port', '1234']);
  t.is(misplaced.code, 2);
  t.regex(misplaced.stderr, /`status` does not take --port/);
});

test.serial('--help lists every command and exits with code 0', async (t) => {
  const { code, stdout } = await cli(['--help']);
  t.is(code, 0);
  const commands = [
    'server',
    'status lock <id>',
    'status queue <key>',
    'status election <id>',
    'cancel <key> <jobId>',
    'release <id> --token <n>',
  ];
  for (const command of commands) {
    t.true(stdout.includes(command), command);
  }
});

test.serial('status needs `lock <id>`, `queue <key>` or `election <id>`', async (t) => {
  const cases: [string[], RegExp][] = [
    [['status'], /`status` needs `lock <id>`, `queue <key>` or `election <id>`/],
    [['status', 'election'], /`status election` needs the election ID/],
    [['status', 'mutex', 'x'], /Unknown status kind `mutex`/],
    [['status', 'lock'], /`status lock` needs the resource ID/],
    [['status', 'queue'], /`status queue` needs the queue key/],
    [['status', 'lock', 'a', 'b'], /Unexpected argument\(s\): b/],
  ];
  for (const [args, message] of cases) {
    const { code, stderr } = await cli(args);
    t.is(code, 2, args.join(' '));
    t.regex(stderr, message);
  }
});

test.serial('release needs a positive integer --token', async (t) => {
  const missing = await cli(['release', 'invoice:42']);
  t.is(missing.code, 2);
  t.regex(missing.stderr, /`release` needs --token <n>/);
  for (const token of ['abc', '0', '1.5', '-3', '99999999999999999999']) {
    const { code, stderr } = await cli(['release', 'invoice:42', `--token=${token}`]);
    t.is(code, 2, token);
    t.regex(stderr, /--token must be a positive integer/);
  }
});

// ---- Connection ----

test.serial('an unreachable server is reported within the timeout, not a hang', async (t) => {
  const port = await freePort();
  const { code, stderr, took } = await cli(['status', 'lock', 'x', '--timeout', '2'], {
    TEMPORAL_ADDRESS: `127.0.0.1:${port}`,
  });
  t.is(code, 1);
  t.regex(stderr, new RegExp(`Cannot reach a Temporal server at 127\\.0\\.0\\.1:${port}`));
  t.regex(stderr, /temporal-coordination server/);
  t.true(took < 30_000, `took ${took} ms`); // generous: tsx start-up under a loaded test run
});

test.serial('--address overrides TEMPORAL_ADDRESS', async (t) => {
  const port = await freePort();
  const { code, stderr } = await cli(['status', 'queue', 'x', '--timeout', '1', '--address', `127.0.0.1:${port}`]);
  t.is(code, 1);
  t.regex(stderr, new RegExp(`127\\.0\\.0\\.1:${port}`));
});

// ---- status lock ----

test.serial('status lock shows the holders, their tokens and the waiters', async (t) => {
  const coordinator = createCoordinator({ client: env.client, taskQueue: env.taskQueue });
  const id = env.id('cli-semaphore');
  const leases: Lease[] = [await coordinator.acquire(id, { limit: 2 }), await coordinator.acquire(id, { limit: 2 })];
  const waiter = coordinator.acquire(id, { limit: 2 });
  try {
    await waitUntil(async () => (await coordinator.lockStatus(id)).waiting === 1, 'the waiter to queue');

    const json = await cli(['status', 'lock', id, '--json']);
    t.is(json.code, 0, json.stderr);
    const status = JSON.parse(json.stdout) as {
      running: boolean;
      limit: number;
      waiting: number;
      holders: { token: number; expiresAt: string }[];
    };
    t.true(status.running);
    t.is(status.limit, 2);
    t.is(status.waiting, 1);
    t.deepEqual(status.holders.map((holder) => holder.token).sort(), leases.map((lease) => lease.token).sort());
    t.true(status.holders.every((holder) => Date.parse(holder.expiresAt) > Date.now()));

    const text = await cli(['status', 'lock', id]);
    t.is(text.code, 0, text.stderr);
    t.regex(text.stdout, new RegExp(`lock ${id} \\(semaphore, limit 2; workflow temporal-coordination/lock:${id}\\)`));
    t.regex(text.stdout, /holders: 2/);
    for (const lease of leases)
      t.regex(text.stdout, new RegExp(`token ${lease.token}  expires \\S+ \\(in [\\d.]+ s\\)`));
    t.regex(text.stdout, /waiting: 1/);
  } finally {
    for (const lease of leases) await lease.release();
    await (await waiter).release();
  }
});

test.serial('status lock shows a read-write lock and whether each holder reads or writes', async (t) => {
  const coordinator = createCoordinator({ client: env.client, taskQueue: env.taskQueue });
  const id = env.id('cli-rw');
  const readers = [await coordinator.acquire(id, { mode: 'read' }), await coordinator.acquire(id, { mode: 'read' })];
  try {
    const { code, stdout, stderr } = await cli(['status', 'lock', id]);
    t.is(code, 0, stderr);
    t.regex(stdout, new RegExp(`lock ${id} \\(read-write lock; workflow`));
    for (const lease of readers) t.regex(stdout, new RegExp(`token ${lease.token}  reads  expires`));
  } finally {
    for (const lease of readers) await lease.release();
  }
});

test.serial('status election shows who leads and the term, or that nobody does', async (t) => {
  const coordinator = createCoordinator({ client: env.client, taskQueue: env.taskQueue });
  const id = env.id('cli-election');
  const nobody = await cli(['status', 'election', id]);
  t.is(nobody.code, 0, nobody.stderr);
  t.regex(nobody.stdout, new RegExp(`election ${id}: nobody leads`));
  const leadership = await coordinator.campaign(id, { value: 'worker-7' });
  try {
    const text = await cli(['status', 'election', id]);
    t.is(text.code, 0, text.stderr);
    t.regex(
      text.stdout,
      new RegExp(
        `election ${id}: worker-7 leads, term ${leadership.term} \\(workflow temporal-coordination/election:${id}\\)`,
      ),
    );
    const json = await cli(['status', 'election', id, '--json']);
    t.deepEqual(JSON.parse(json.stdout), { leader: 'worker-7', term: leadership.term });
  } finally {
    await leadership.resign();
  }
});

test.serial('status lock of a resource with no workflow says it is idle', async (t) => {
  const id = env.id('cli-idle');
  const { code, stdout } = await cli(['status', 'lock', id]);
  t.is(code, 0);
  t.is(stdout.trim(), `lock ${id}: idle (no workflow running: no holders, no waiters)`);
});

test.serial('status with no worker to answer names the task queue, within the timeout', async (t) => {
  const taskQueue = `cli-no-worker-${randomUUID()}`;
  const coordinator = createCoordinator({ client: env.client, taskQueue });
  const id = env.id('cli-unserved');
  // Starts the lock's workflow on a task queue no worker polls.
  await t.throwsAsync(coordinator.acquire(id, { waitTimeout: '300ms' }), { instanceOf: LockTimeoutError });
  const { code, stderr, took } = await cli(['status', 'lock', id, '--timeout', '2']);
  t.is(code, 1);
  t.regex(stderr, new RegExp(`No answer about lock ${id} within 2 s`));
  t.true(stderr.includes(`task queue ${taskQueue}`), stderr);
  t.true(took < 30_000, `took ${took} ms`); // generous: tsx start-up under a loaded test run
  await env.client.workflow.getHandle(`temporal-coordination/lock:${id}`).terminate('test done');
});

// ---- repair ----

test.serial('repair lock leaves a lock that makes progress alone', async (t) => {
  const id = env.id('cli-repair-healthy');
  const { acquire } = createCoordinator({ client: env.client, taskQueue: env.taskQueue });
  const lease = await acquire(id);
  const { code, stdout } = await cli(['repair', 'lock', id]);
  t.is(code, 0);
  t.is(stdout.trim(), `${id} is idle or making progress: nothing to repair.`);
  await lease.renew();
  t.false(lease.signal.aborted);
  await lease.release();
});

test.serial('repair lock terminates a run whose workflow tasks keep failing', async (t) => {
  const id = env.id('cli-repair-stuck');
  const taskQueue = `cli-repair-${randomUUID()}`;
  const worker = await Worker.create({
    connection: env.nativeConnection,
    namespace: env.namespace,
    taskQueue,
    workflowsPath: new URL('./_helpers/failing-lock-workflow.ts', import.meta.url).pathname,
  });
  const running = worker.run();
  t.teardown(async () => {
    worker.shutdown();
    await running;
  });
  const handle = await env.client.workflow.start('lockWorkflow', {
    workflowId: `temporal-coordination/lock:${id}`,
    taskQueue,
  });
  // The server retries a failing workflow task at once, then about every 10 s: the fourth attempt comes after ~20 s.
  const deadline = Date.now() + 60_000;
  while (((await handle.describe()).raw.pendingWorkflowTask?.attempt ?? 0) <= 3) {
    if (Date.now() > deadline) return t.fail('no fourth workflow task attempt within 60 s');
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  const { code, stdout } = await cli(['repair', 'lock', id, '--json']);
  t.is(code, 0);
  const result = JSON.parse(stdout) as { terminated: boolean; failures: number };
  t.true(result.terminated, stdout);
  t.true(result.failures >= 3, stdout);
  t.is((await handle.describe()).status.name, 'TERMINATED');
});

test.serial('repair needs `lock <id>`', async (t) => {
  for (const args of [['repair'], ['repair', 'queue', 'x'], ['repair', 'lock']]) {
    const { code, stderr } = await cli(args);
    t.is(code, 2, args.join(' '));
    t.regex(stderr, /`repair/, args.join(' '));
  }
});

// ---- status queue ----

test.serial('status queue shows pending jobs, the paused flag, the processed count and failures', async (t) => {
  const coordinator = createCoordinator({ client: env.client, taskQueue: env.taskQueue });
  const key = env.id('cli-queue');
  const failing = await coordinator.enqueue(key, 'fail', ['card declined'], { retry: { maximumAttempts: 1 } });
  await t.throwsAsync(failing.result());
  await coordinator.pauseQueue(key);
  await coordinator.enqueue(key, 'noop', []);
  await coordinator.enqueue(key, 'noop', []);
  try {
    const json = await cli(['status', 'queue', key, '--json']);
    t.is(json.code, 0, json.stderr);
    const status = JSON.parse(json.stdout) as {
      running: boolean;
      paused: boolean;
      pending: number;
      runningJobs: string[];
      processed: number;
      recentFailures: { jobId: string; error: string; attempts: number }[];
    };
    t.like(status, { running: true, paused: true, pending: 2, runningJobs: [], processed: 1 });
    t.is(status.recentFailures.length, 1);
    t.like(status.recentFailures[0], { jobId: failing.id, error: 'card declined', attempts: 1 });

    const text = await cli(['status', 'queue', key]);
    t.is(text.code, 0, text.stderr);
    t.regex(text.stdout, new RegExp(`queue ${key} \\(workflow temporal-coordination/queue:${key}\\)`));
    t.regex(text.stdout, /paused: +yes/);
    t.regex(text.stdout, /pending: +2/);
    t.regex(text.stdout, /processed: +1/);
    t.regex(text.stdout, new RegExp(`${failing.id} \\(fail\\) failed at \\S+ after 1 attempt\\(s\\): card declined`));
  } finally {
    await coordinator.resumeQueue(key);
  }
});

test.serial(
  'cancel removes a pending job, and status queue shows the cancel, the rate limit and delayed jobs',
  async (t) => {
    const coordinator = createCoordinator({ client: env.client, taskQueue: env.taskQueue });
    const key = env.id('cli-cancel');
    await coordinator.pauseQueue(key);
    const rateLimit = { max: 5, per: '1m' } as const;
    const doomed = await coordinator.enqueue(key, 'noop', [], { rateLimit });
    const later = await coordinator.enqueue(key, 'noop', [], { delay: '1h', rateLimit });
    try {
      const done = await cli(['cancel', key, doomed.id, '--reason', 'duplicate order']);
      t.is(done.code, 0, done.stderr);
      t.regex(done.stdout, new RegExp(`Cancelled job ${doomed.id} of queue ${key} \\(reason: duplicate order\\)`));
      t.deepEqual(await doomed.status(), { state: 'cancelled', reason: 'duplicate order' });
      const again = await cli(['cancel', key, 'no-such-job']);
      t.is(again.code, 1);
      t.regex(again.stderr, /had finished or is unknown: nothing was cancelled/);
      const text = await cli(['status', 'queue', key]);
      t.is(text.code, 0, text.stderr);
      t.regex(text.stdout, /cancelled: +1/);
      t.regex(text.stdout, /rate limit: +5 job start\(s\) per 60000 ms/);
      t.regex(text.stdout, new RegExp(`delayed: +${later.id} until \\S+`));
      const usage = await cli(['cancel', key]);
      t.is(usage.code, 2);
      t.regex(usage.stderr, /`cancel` needs the queue key and the job ID/);
    } finally {
      await later.cancel();
      await coordinator.resumeQueue(key);
    }
  },
);

test.serial('status queue of a key with no workflow says it is idle', async (t) => {
  const key = env.id('cli-idle-queue');
  const { code, stdout } = await cli(['status', 'queue', key]);
  t.is(code, 0);
  t.is(stdout.trim(), `queue ${key}: idle (no workflow running: nothing pending or running)`);
});

// ---- release ----

test.serial('release refuses a token that does not hold the lock, and releases nothing', async (t) => {
  const coordinator = createCoordinator({ client: env.client, taskQueue: env.taskQueue });
  const id = env.id('cli-release');
  const lease = await coordinator.acquire(id);
  try {
    const { code, stderr } = await cli(['release', id, '--token', String(lease.token + 1)]);
    t.is(code, 1);
    t.regex(stderr, new RegExp(`Token ${lease.token + 1} does not hold ${id}: its holders are tokens ${lease.token}`));
    t.deepEqual(
      (await coordinator.lockStatus(id)).holders.map((holder) => holder.token),
      [lease.token],
    );
    t.false(lease.signal.aborted);
  } finally {
    await lease.release();
  }
  const idle = await cli(['release', env.id('cli-release-idle'), '--token', '7']);
  t.is(idle.code, 1);
  t.regex(idle.stderr, /does not hold .*: the lock is idle\. Nothing was released\./);
});

test.serial(
  'release frees the slot held with the token, records the reason, and the next waiter is granted',
  async (t) => {
    const coordinator = createCoordinator({ client: env.client, taskQueue: env.taskQueue });
    const id = env.id('cli-force');
    const stuck = await coordinator.acquire(id, { ttl: '3s' });
    const next = coordinator.acquire(id);
    await waitUntil(async () => (await coordinator.lockStatus(id)).waiting === 1, 'the waiter');
    const { code, stdout } = await cli(['release', id, '--token', String(stuck.token), '--reason', 'stuck in deploy']);
    t.is(code, 0);
    t.is(
      stdout.trim(),
      `Released token ${stuck.token} of ${id} (reason: stuck in deploy). Its holder's next renewal fails.`,
    );
    const granted = await next;
    t.true(granted.token > stuck.token);
    const status = await cli(['status', 'lock', id]);
    t.regex(status.stdout, new RegExp(`forced release of token ${stuck.token} at .*: stuck in deploy`));
    await aborted(stuck.signal);
    t.is((stuck.signal.reason as LeaseLostError).reason, 'revoked');
    await granted.release();
    await stuck.release();
  },
);

// ---- server ----

test.serial('server refuses a port already in use, naming it', async (t) => {
  const busy = createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => busy.once('listening', resolve));
  const { port } = busy.address() as AddressInfo;
  try {
    const { code, stderr } = await cli(['server', '--port', String(port)]);
    t.is(code, 1);
    t.regex(stderr, new RegExp(`Port ${port} \\(the frontend\\) is already in use`));
  } finally {
    busy.close();
  }
});

test.serial(
  'server starts the dev server, prints its address, namespace, Web UI, version and log file, and stops on SIGINT',
  async (t) => {
    // A free frontend port whose Web UI port (+1000) is free too.
    let port = await freePort();
    while (port > 64_000) port = await freePort();
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'lib/cli.ts', 'server', '--port', String(port), '--namespace', 'cli-test'],
      { cwd: root, env: process.env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (chunk: Buffer) => {
          stdout += chunk.toString();
          if (stdout.includes('Ctrl-C to stop.')) resolve();
        });
        void exited.then(() => reject(new Error(`server exited early: ${stderr}`)));
      });
      t.regex(stdout, new RegExp(`address: +127\\.0\\.0\\.1:${port}`));
      t.regex(stdout, /namespace: +cli-test/);
      t.regex(stdout, new RegExp(`Web UI: +http://(127\\.0\\.0\\.1|localhost):${port + 1000}`));
      t.regex(stdout, new RegExp(`export TEMPORAL_ADDRESS=127\\.0\\.0\\.1:${port} TEMPORAL_NAMESPACE=cli-test`));
      t.regex(stdout, /version: +Temporal server \d+\.\d+\.\d+/);
      // The server's own output (its banner, its warnings) goes to the log file, not to the terminal.
      const logFile = /log: +(\S+)/.exec(stdout)?.[1] ?? '';
      t.true(existsSync(logFile), stdout);
      t.notRegex(stdout + stderr, /Server: +(127\.0\.0\.1|localhost):/);
      // It is a real server, with a real Web UI.
      const connection = await Connection.connect({ address: `127.0.0.1:${port}` });
      const { namespaceInfo } = await connection.workflowService.describeNamespace({ namespace: 'cli-test' });
      t.is(namespaceInfo?.name, 'cli-test');
      await connection.close();
      t.is((await fetch(`http://127.0.0.1:${port + 1000}/`)).status, 200);

      child.kill('SIGINT');
      t.is(await exited, 0, stderr);
      t.regex(stderr, /SIGINT: stopping the dev server/);
    } finally {
      clearTimeout(timer);
      child.kill('SIGKILL');
    }
  },
);

test.serial('the package bin points at the compiled CLI, whose source starts with a shebang', (t) => {
  const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as { bin?: Record<string, string> };
  t.deepEqual(pkg.bin, { 'temporal-coordination': './dist/cli.js' });
  t.true(readFileSync(new URL('lib/cli.ts', root), 'utf8').startsWith('#!/usr/bin/env node\n'));
});
