// A worker process killed in the middle of a job: the job is retried when a worker is back, and the key's order holds.
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { createCoordinator } from '../lib/index.js';
import { serverAddress } from './_helpers/temporal.js';

const childPath = fileURLToPath(new URL('./_helpers/queue-worker-child.ts', import.meta.url));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function startChild(taskQueue: string, log: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', childPath], {
    env: { ...process.env, TASK_QUEUE: taskQueue, QUEUE_LOG: log },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`worker child exited early with ${code}`)));
    child.stdout!.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('ready')) resolve(child);
    });
  });
}

async function waitFor(check: () => boolean, timeout: number): Promise<void> {
  const started = performance.now();
  while (!check()) {
    if (performance.now() - started > timeout) throw new Error(`condition not met within ${timeout} ms`);
    await sleep(20);
  }
}

const lines = (log: string) => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : []);

test('a job whose worker is SIGKILLed is retried when a worker returns, and the key keeps its order', async (t) => {
  const { address, namespace } = serverAddress();
  const connection = await Connection.connect({ address });
  const client = new Client({ connection, namespace });
  const taskQueue = `queue-death-${randomUUID().slice(0, 8)}`;
  const scratch = mkdtempSync(join(tmpdir(), 'queue-death-'));
  const log = join(scratch, 'jobs.log');
  const children: ChildProcess[] = [];
  t.teardown(async () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await connection.close();
    rmSync(scratch, { recursive: true, force: true });
  });

  const { enqueue } = createCoordinator({ client, taskQueue });
  const key = `death-${randomUUID()}`;
  children.push(await startChild(taskQueue, log));
  // The per-attempt timeout is how long a job on a dead worker waits before its retry starts.
  const options = { timeout: '3s', retry: { initialInterval: 50 } };
  const first = await enqueue(key, 'step', ['first', 1_500], options);
  const second = await enqueue(key, 'step', ['second', 10], options);
  const third = await enqueue(key, 'step', ['third', 10], options);

  await waitFor(() => lines(log).includes('start first 1'), 20_000);
  const killed = children[0]!;
  const exited = new Promise((resolve) => killed.once('exit', resolve));
  killed.kill('SIGKILL');
  await exited;
  const killedAt = performance.now();
  await sleep(500);
  t.deepEqual(lines(log), ['start first 1'], 'nothing ran while no worker was up');

  children.push(await startChild(taskQueue, log));
  t.deepEqual(await Promise.all([first.result(), second.result(), third.result()]), ['first', 'second', 'third']);
  t.log(`all three done ${(performance.now() - killedAt).toFixed(0)} ms after the kill`);
  t.deepEqual(lines(log), [
    'start first 1',
    'start first 2',
    'end first',
    'start second 1',
    'end second',
    'start third 1',
    'end third',
  ]);
  children[1]!.kill('SIGTERM');
});
