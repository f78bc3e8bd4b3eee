/**
 * The queue scenarios' driver: no-op jobs that log when they run, the order and loss checks over that log, and one
 * measured run (pause the keys, enqueue every job, resume, wait for all to run).
 * @module
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { EnqueueOptions } from '../../lib/index.js';
import { forEachLimited } from '../cost.js';
import type { ScenarioContext } from '../scenario.js';
import { CorrectnessError } from './_critical-section.js';
import { runLevel, type LevelOptions, type LevelOutcome } from './_lib.js';

/** A queue that runs no job for this long, with jobs still missing, has lost them. */
const STALL_TIMEOUT = 60_000;

interface Run {
  readonly seq: number;
  readonly start: number;
  end: number;
}

/** What every no-op job did, per key, in the order the jobs ran. */
export class JobLog {
  readonly runs = new Map<string, Run[]>();
  total = 0;

  /** The job handlers to register: `noop(key, seq)` logs its run and returns at once. */
  readonly jobs = {
    noop: (key: string, seq: number): number => {
      let runs = this.runs.get(key);
      if (runs === undefined) this.runs.set(key, (runs = []));
      const run: Run = { seq, start: performance.now(), end: Number.NaN };
      runs.push(run);
      this.total++;
      run.end = performance.now();
      return seq;
    },
  };

  /**
   * Every key's jobs ran in enqueue order (seq 0, 1, 2, ...), one at a time (each after the previous one ended), and
   * exactly once: none lost, none run twice. Throws a {@link CorrectnessError} listing the first violations.
   */
  assertCorrect(label: string, keys: readonly string[], jobsPerKey: number): void {
    const violations: string[] = [];
    for (const key of keys) {
      const runs = this.runs.get(key) ?? [];
      const seen = new Set<number>();
      runs.forEach((run, index) => {
        if (seen.has(run.seq)) violations.push(`${key}: job ${run.seq} ran more than once`);
        seen.add(run.seq);
        if (run.seq !== index) violations.push(`${key}: job ${run.seq} ran in position ${index}`);
        const previous = runs[index - 1];
        if (previous !== undefined && run.start < previous.end) {
          violations.push(`${key}: job ${run.seq} started before job ${previous.seq} ended`);
        }
      });
      const lost = Array.from({ length: jobsPerKey }, (_, seq) => seq).filter((seq) => !seen.has(seq));
      if (lost.length > 0) violations.push(`${key}: ${lost.length} jobs never ran (first: ${lost[0]})`);
    }
    if (violations.length === 0) return;
    const more = violations.length > 5 ? ` (and ${violations.length - 5} more)` : '';
    throw new CorrectnessError(
      `${label}: ${violations.length} order or loss violations: ${violations.slice(0, 5).join('; ')}${more}`,
    );
  }

  /** Start-to-start intervals between consecutive jobs of each key, pooled: the time one job takes the queue. */
  intervals(): number[] {
    const intervals: number[] = [];
    for (const runs of this.runs.values()) {
      for (let index = 1; index < runs.length; index++) intervals.push(runs[index]!.start - runs[index - 1]!.start);
    }
    return intervals;
  }

  lastEnd(): number {
    let last = Number.NEGATIVE_INFINITY;
    for (const runs of this.runs.values()) for (const run of runs) last = Math.max(last, run.end);
    return last;
  }
}

export interface QueueRun {
  readonly keys: readonly string[];
  readonly enqueueLatencies: number[];
  /** Wall time of the enqueue phase, ms. */
  readonly enqueueElapsed: number;
  /** Wall time from resuming the keys to the last job's end, ms. */
  readonly processElapsed: number;
}

export interface QueueRunOptions {
  /** Suffix of the run's task queue, and its label in the progress line. */
  readonly name: string;
  readonly keys: number;
  readonly jobsPerKey: number;
  /** Keys enqueued to at once. */
  readonly concurrency: number;
  /** Options of every job, for example `{ local: true }`. */
  readonly job?: Omit<EnqueueOptions, 'jobId'>;
  readonly worker?: LevelOptions['worker'];
}

/**
 * Pauses `keys` queue keys, enqueues `jobsPerKey` jobs to each (each key's one after the other, so their order is
 * defined; up to `concurrency` keys at once), resumes the keys and waits until every job has run. Enqueueing into a
 * paused queue keeps the two phases apart: the enqueue latency, then the jobs per second of a full queue.
 */
export async function runQueue(
  ctx: ScenarioContext,
  options: QueueRunOptions,
): Promise<{ log: JobLog; outcome: LevelOutcome<QueueRun> }> {
  const log = new JobLog();
  const total = options.keys * options.jobsPerKey;
  const outcome = await runLevel(
    ctx,
    { name: options.name, processes: 1, jobs: log.jobs, ...(options.worker ? { worker: options.worker } : {}) },
    async (level) => {
      const { coordinator } = level.processOf(0);
      const keys = Array.from({ length: options.keys }, (_, index) => `${level.taskQueue}/key-${index}`);
      ctx.progress.update(`${options.name}: pausing ${keys.length} keys`);
      await forEachLimited(keys, 16, (key) => coordinator.pauseQueue(key));
      const enqueueLatencies: number[] = [];
      const enqueueStart = performance.now();
      await forEachLimited(keys, options.concurrency, async (key) => {
        for (let seq = 0; seq < options.jobsPerKey; seq++) {
          ctx.signal.throwIfAborted();
          const start = performance.now();
          await coordinator.enqueue(key, 'noop', [key, seq], { ...options.job, jobId: `job-${seq}` });
          enqueueLatencies.push(performance.now() - start);
          ctx.progress.update(`${options.name}: enqueued ${enqueueLatencies.length}/${total}`);
        }
      });
      const enqueueElapsed = performance.now() - enqueueStart;
      const resumedAt = performance.now();
      await forEachLimited(keys, 16, (key) => coordinator.resumeQueue(key));
      let seen = log.total;
      let progressAt = performance.now();
      while (log.total < total) {
        ctx.signal.throwIfAborted();
        await delay(50);
        ctx.progress.update(`${options.name}: ${log.total}/${total} jobs ran`);
        if (log.total !== seen) {
          seen = log.total;
          progressAt = performance.now();
        } else if (performance.now() - progressAt > STALL_TIMEOUT) {
          log.assertCorrect(options.name, keys, options.jobsPerKey);
          throw new CorrectnessError(`${options.name}: ${total - log.total} jobs never ran`);
        }
      }
      return { keys, enqueueLatencies, enqueueElapsed, processElapsed: log.lastEnd() - resumedAt };
    },
    () => total,
  );
  // Checked after the workflows closed: a job run twice late would show here.
  log.assertCorrect(options.name, outcome.value.keys, options.jobsPerKey);
  return { log, outcome };
}
