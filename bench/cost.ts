/**
 * What operations cost: the dev server's CPU time (read from `/proc/<pid>/stat` of its `temporal server start-dev`
 * process), this process's CPU time and peak RSS (the worker runs in it), and history events read back from the
 * workflows' histories.
 * @module
 */
import { execFileSync } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { Client } from '@temporalio/client';
import type { Cost, ScenarioContext } from './scenario.js';

const serverPids = new Map<string, Promise<number | undefined>>();

/**
 * The pid of the `temporal server start-dev` process listening on `address`'s port, found by scanning `/proc`
 * (several dev servers may run on the machine: the port tells ours). `undefined` when there is none (a server given
 * by `TEMPORAL_ADDRESS` on another host, or not Linux).
 */
export function devServerPid(address: string): Promise<number | undefined> {
  let pid = serverPids.get(address);
  if (pid === undefined) {
    pid = findDevServer(address.slice(address.lastIndexOf(':') + 1));
    serverPids.set(address, pid);
  }
  return pid;
}

async function findDevServer(port: string): Promise<number | undefined> {
  let entries: string[];
  try {
    entries = await readdir('/proc');
  } catch {
    return undefined;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    let argv: string[];
    try {
      argv = (await readFile(`/proc/${entry}/cmdline`, 'utf8')).split('\0');
    } catch {
      continue; // Gone meanwhile, or not ours to read.
    }
    if (path.basename(argv[0] ?? '') !== 'temporal' || !argv.includes('start-dev')) continue;
    const flag = argv.indexOf('--port');
    if ((flag >= 0 && argv[flag + 1] === port) || argv.includes(`--port=${port}`)) return Number(entry);
  }
  return undefined;
}

let ticksPerSecond: number | undefined;
function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** User + system CPU time of `pid` in ms, or `undefined` if it cannot be read. */
async function cpuTime(pid: number | undefined): Promise<number | undefined> {
  if (pid === undefined) return undefined;
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces), from field 3 (state): utime is field 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? (ticks * 1000) / clockTicks() : undefined;
  } catch {
    return undefined;
  }
}

/** Measures the resources one row uses: start it before the row's work, `stop()` it after. */
export class CostMeter {
  readonly #pid: number | undefined;
  readonly #serverStart: number | undefined;
  readonly #processStart = process.cpuUsage();
  readonly #timer: NodeJS.Timeout;
  #peakRss = process.memoryUsage.rss();

  private constructor(pid: number | undefined, serverStart: number | undefined) {
    this.#pid = pid;
    this.#serverStart = serverStart;
    this.#timer = setInterval(() => {
      this.#peakRss = Math.max(this.#peakRss, process.memoryUsage.rss());
    }, 100);
    this.#timer.unref();
  }

  static async start(ctx: ScenarioContext): Promise<CostMeter> {
    const pid = await devServerPid(ctx.address);
    return new CostMeter(pid, await cpuTime(pid));
  }

  /** Server CPU, process CPU and peak RSS since `start`. */
  async stop(): Promise<Omit<Cost, 'historyEventsPerOp'>> {
    clearInterval(this.#timer);
    const serverEnd = await cpuTime(this.#pid);
    const { user, system } = process.cpuUsage(this.#processStart);
    return {
      ...(serverEnd === undefined || this.#serverStart === undefined
        ? {}
        : { serverCpuMs: Math.round(serverEnd - this.#serverStart) }),
      processCpuMs: Math.round((user + system) / 1000),
      peakRssBytes: Math.max(this.#peakRss, process.memoryUsage.rss()),
    };
  }
}

/**
 * Runs `fn` over `items` with at most `concurrency` calls in flight. After the first failure no new call starts, and
 * the calls in flight are waited for before it is thrown (so nothing still runs when the caller cleans up).
 */
export async function forEachLimited<T>(
  items: readonly T[],
  concurrency: number,
  fn: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failure: { readonly error: unknown } | undefined;
  const lanes = Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (failure === undefined && next < items.length) {
      const index = next++;
      try {
        await fn(items[index] as T, index);
      } catch (error) {
        failure ??= { error };
      }
    }
  });
  await Promise.all(lanes);
  if (failure !== undefined) throw failure.error;
}

/**
 * Waits until no workflow matching the visibility `query` is running (the coordination workflows exit by themselves
 * after a short linger), so their histories are complete. Gives up quietly after `timeout` ms: the count is then of
 * the events so far.
 */
export async function waitForClosed(
  client: Client,
  query: string,
  signal: AbortSignal,
  timeout = 15_000,
): Promise<boolean> {
  const deadline = performance.now() + timeout;
  while (performance.now() < deadline) {
    signal.throwIfAborted();
    const { count } = await client.workflow.count(`${query} AND ExecutionStatus = "Running"`);
    if (count === 0) return true;
    await delay(250, undefined, { signal });
  }
  return false;
}

/** Workflows, runs and history events of every execution (every run) that the visibility `query` matches. */
export async function historyEvents(
  client: Client,
  query: string,
  signal: AbortSignal,
): Promise<{ workflows: number; runs: number; events: number }> {
  const runs: { workflowId: string; runId: string }[] = [];
  for await (const execution of client.workflow.list({ query })) {
    signal.throwIfAborted();
    runs.push({ workflowId: execution.workflowId, runId: execution.runId });
  }
  let events = 0;
  await forEachLimited(runs, 8, async ({ workflowId, runId }) => {
    signal.throwIfAborted();
    const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
    events += history.events?.length ?? 0;
  });
  return { workflows: new Set(runs.map((run) => run.workflowId)).size, runs: runs.length, events };
}

/**
 * History events per operation of the workflows on `taskQueue`, once they have closed: what the server stores for
 * each hand-off or job. `undefined` if visibility cannot answer.
 */
export async function historyEventsPerOp(
  ctx: ScenarioContext,
  client: Client,
  taskQueue: string,
  operations: number,
): Promise<{ perOp: number; workflows: number; runs: number; events: number } | undefined> {
  if (operations <= 0) return undefined;
  const query = `TaskQueue = "${taskQueue}"`;
  try {
    ctx.progress.update('waiting for the workflows to close, to count their history events');
    await waitForClosed(client, query, ctx.signal);
    ctx.progress.update('counting history events');
    const counted = await historyEvents(client, query, ctx.signal);
    return { ...counted, perOp: Math.round((counted.events / operations) * 100) / 100 };
  } catch (error) {
    ctx.signal.throwIfAborted();
    ctx.progress.log(`could not count history events: ${String(error)}`);
    return undefined;
  }
}
