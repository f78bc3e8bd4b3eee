/**
 * `leader-failover`: how long an election goes without a leader when its leader dies. Three candidates campaign, each
 * in a child process of its own (`_candidate.ts`) with a short ttl; the worker runs in this process. Each time one
 * leads, it is left to lead (and renew) for a while, then SIGKILLed: the sample is the time from the kill to the next
 * candidate reporting that it leads. A fresh candidate replaces the dead one before the next kill, so a kill always
 * leaves two living candidates queued. A run fails if two living candidates lead at once, if terms do not increase
 * from one leader to the next, or if a living leader loses its leadership.
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { lockTimings } from '../../lib/workflows/index.js';
import { abortable, sampleSequentially } from '../sample.js';
import { defineScenario, type Row, type ScenarioContext } from '../scenario.js';
import { CorrectnessError } from './_critical-section.js';
import { runLevel, type Level } from './_lib.js';

/** The candidates' ttl (ms): short, so that a dead leader is followed soon. They renew about every ttl / 3. */
const TTL = 3_000;
/** Candidates alive before each kill: the leader and two queued behind it. */
const CANDIDATES = 3;
/** Kills measured: the 20 (3 with `--quick`), fewer if `--samples` says so. */
const KILLS = 20;
const QUICK_KILLS = 3;
/** How long a fresh child may take to start, connect and queue its candidacy on a loaded machine. */
const START_TIMEOUT = 60_000;
/** Past this, a failover counts as lost and fails the run: ttl and the claim window, with a loaded machine's margin. */
const FAILOVER_TIMEOUT = TTL + lockTimings.claimWindow + 30_000;
/** How long the candidates may take to withdraw or resign at the end before they are killed. */
const STOP_TIMEOUT = 10_000;

const candidateScript = fileURLToPath(new URL('./_candidate.ts', import.meta.url));

export default defineScenario({
  name: 'leader-failover',
  description:
    `Leader failover: ${CANDIDATES} candidates in child processes (ttl ${TTL / 1000} s), the leader SIGKILLed, ` +
    `time until the next one leads; ${KILLS} kills.`,
  async run(ctx) {
    const kills = Math.min(ctx.samples, ctx.quick ? QUICK_KILLS : KILLS);
    const warmup = Math.min(ctx.warmup, 1);
    const rows: Row[] = [];
    const outcome = await runLevel(
      ctx,
      { name: 'failover', processes: 1 },
      (level) => measure(ctx, level, kills, warmup, (row) => rows.push(row)),
      () => kills + warmup,
    );
    for (const row of rows) ctx.record({ ...row, cost: outcome.cost });
  },
});

interface Message {
  readonly queued?: true;
  readonly leading?: true;
  readonly lost?: true;
  readonly term?: number;
  readonly reason?: string;
}

/** One candidate's child process and what it has reported. */
class Candidate {
  readonly messages: Message[] = [];
  readonly exited: Promise<void>;
  /** Set when the bench kills it: from then on it no longer counts as leading. */
  killed = false;
  private stderr = '';
  private readonly listeners = new Set<() => void>();

  constructor(
    readonly name: string,
    private readonly child: ChildProcess,
  ) {
    let buffer = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      buffer += chunk;
      for (let newline = buffer.indexOf('\n'); newline >= 0; newline = buffer.indexOf('\n')) {
        const line = buffer.slice(0, newline).trim();
        buffer = buffer.slice(newline + 1);
        if (line.startsWith('{')) this.messages.push(JSON.parse(line) as Message);
        for (const listener of this.listeners) listener();
      }
    });
    // Kept for the error message, should the child fail.
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr = (this.stderr + chunk).slice(-2_000);
    });
    this.exited = new Promise((resolve) => {
      child.once('exit', () => {
        resolve();
        for (const listener of this.listeners) listener();
      });
    });
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  get term(): number | undefined {
    return this.messages.find((message) => message.leading)?.term;
  }

  /** The first message that `match` accepts, received or to come; rejects if the child exits first, or in time. */
  waitFor(match: (message: Message) => boolean, what: string, timeout: number): Promise<Message> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const found = this.messages.find(match);
        if (found !== undefined) done(() => resolve(found));
        else if (!this.running) done(() => reject(new Error(`${this.name} exited before ${what}${this.tail()}`)));
      };
      const timer = setTimeout(
        () => done(() => reject(new Error(`${this.name}: no ${what} within ${timeout} ms`))),
        timeout,
      );
      const done = (settle: () => void): void => {
        clearTimeout(timer);
        this.listeners.delete(check);
        settle();
      };
      this.listeners.add(check);
      check();
    });
  }

  /** Sends SIGKILL, at once. */
  kill(): void {
    this.killed = true;
    if (this.running) this.child.kill('SIGKILL');
  }

  /** Closes its stdin, so that it withdraws or resigns and exits; kills it if it takes longer than `timeout`. */
  async stop(timeout: number): Promise<void> {
    this.killed = true;
    this.child.stdin!.end();
    const timer = setTimeout(() => this.kill(), timeout);
    await this.exited;
    clearTimeout(timer);
  }

  private tail(): string {
    return this.stderr.trim() === '' ? '' : `; its stderr ends: ${this.stderr.trim()}`;
  }
}

/** The candidates of one election: started, kept at {@link CANDIDATES}, killed, checked. */
class Candidates {
  private readonly all: Candidate[] = [];

  constructor(
    private readonly ctx: ScenarioContext,
    private readonly taskQueue: string,
    private readonly election: string,
  ) {}

  /** Starts candidates until {@link CANDIDATES} are alive, and waits until each has queued its candidacy. */
  async fill(signal: AbortSignal): Promise<void> {
    while (this.living().length < CANDIDATES) this.all.push(this.start(`candidate-${this.all.length + 1}`));
    await abortable(
      Promise.all(
        this.living().map((candidate) => candidate.waitFor((m) => m.queued === true, 'its candidacy', START_TIMEOUT)),
      ),
      signal,
    );
  }

  /** The living candidate that reports it leads first. Fails if it is not alone, or its term is not the highest yet. */
  async nextLeader(signal: AbortSignal): Promise<Candidate> {
    const living = this.living();
    const leader = await abortable(
      Promise.any(
        living.map(async (candidate) => {
          await candidate.waitFor((m) => m.leading === true, 'leadership', FAILOVER_TIMEOUT);
          return candidate;
        }),
      ),
      signal,
    ).catch((error: unknown) => {
      throw error instanceof AggregateError ? error.errors[0] : error;
    });
    this.check();
    const previous = this.all.filter((candidate) => candidate !== leader && candidate.term !== undefined);
    const highest = Math.max(0, ...previous.map((candidate) => candidate.term!));
    if (leader.term! <= highest) {
      throw new CorrectnessError(`${leader.name} leads with term ${leader.term}, not above an earlier term ${highest}`);
    }
    return leader;
  }

  /** Fails if two living candidates lead, or a living one lost its leadership. */
  check(): void {
    const leading = this.living().filter((candidate) => candidate.term !== undefined);
    if (leading.length > 1) {
      throw new CorrectnessError(`${leading.map((candidate) => candidate.name).join(' and ')} lead at once`);
    }
    for (const candidate of this.living()) {
      const lost = candidate.messages.find((message) => message.lost);
      if (lost) throw new CorrectnessError(`${candidate.name} lost its leadership (term ${lost.term}): ${lost.reason}`);
    }
  }

  /** Lets the living candidates withdraw or resign, so that the election's workflow can close. */
  async stop(): Promise<void> {
    await Promise.all(this.living().map((candidate) => candidate.stop(STOP_TIMEOUT)));
  }

  /** Kills every candidate still running, and waits until they are gone. */
  async kill(): Promise<void> {
    for (const candidate of this.all) candidate.kill();
    await Promise.all(this.all.map((candidate) => candidate.exited));
  }

  private living(): Candidate[] {
    return this.all.filter((candidate) => !candidate.killed && candidate.running);
  }

  private start(name: string): Candidate {
    const env = {
      TEMPORAL_ADDRESS: this.ctx.address,
      TEMPORAL_NAMESPACE: this.ctx.namespace,
      TASK_QUEUE: this.taskQueue,
      ELECTION: this.election,
      VALUE: name,
      TTL: String(TTL),
    };
    const child = spawn(process.execPath, ['--import', 'tsx', candidateScript], {
      env: { ...process.env, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    return new Candidate(name, child);
  }
}

/**
 * Kills `warmup + kills` leaders one after the other and records the failover times of the last `kills` (with
 * `record`). Each leader leads for at least ttl / 2 (claimed and renewed once), then for a random part of a renewal
 * period more, so that the kills fall anywhere in the renewal cycle.
 */
async function measure(
  ctx: ScenarioContext,
  level: Level,
  kills: number,
  warmup: number,
  record: (row: Row) => void,
): Promise<void> {
  // Stop at once, too, if the worker dies: no leader would follow.
  const crashed = new AbortController();
  level.worker.crashed.catch((error: unknown) => crashed.abort(error));
  const signal = AbortSignal.any([ctx.signal, crashed.signal]);
  const candidates = new Candidates(ctx, level.taskQueue, `${level.taskQueue}/election`);
  try {
    ctx.progress.update(`starting ${CANDIDATES} candidates`);
    await candidates.fill(signal);
    let leader = await candidates.nextLeader(signal);
    let ledAt = performance.now();
    await sampleSequentially(
      { ...ctx, signal, record },
      `leader failover (SIGKILL -> next leader), ttl ${TTL / 1000} s`,
      async () => {
        await candidates.fill(signal);
        const held = performance.now() - ledAt;
        await sleep(Math.max(0, TTL / 2 - held) + Math.random() * (TTL / 3), undefined, { signal });
        candidates.check();
        const start = performance.now();
        leader.kill();
        leader = await candidates.nextLeader(signal);
        ledAt = performance.now();
        return ledAt - start;
      },
      {
        samples: kills,
        warmup,
        note:
          `${CANDIDATES} candidates, each a child process; ttl ${TTL / 1000} s, renewed every ttl / 3. The leader is ` +
          `SIGKILLed once it has led ttl / 2 (claimed, renewed) plus a random part of ttl / 3, so anywhere in its ` +
          `renewal cycle; timed from the kill to the next candidate's report that it leads. The dead leader's lease ` +
          `runs out ttl after its last renewal (about ${(TTL * 2) / 3 / 1000}-${TTL / 1000} s after the kill) and ` +
          `the next queued candidate is granted at once: failover <= ttl + the hand-over. A dead candidate at the ` +
          `head of the queue would add min(ttl, claim window ${lockTimings.claimWindow / 1000} s) (its grant lapses ` +
          `unclaimed): none here, the queued candidates live`,
      },
    );
    ctx.progress.update('stopping the candidates');
    await candidates.stop();
  } finally {
    await candidates.kill();
  }
}
