// Child processes for the fault cases: spawned with tsx, their stdout read as JSON lines, killed for real.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export type Message = Record<string, unknown>;

export class Child {
  readonly messages: Message[] = [];
  private readonly listeners = new Set<() => void>();
  readonly exited: Promise<number | NodeJS.Signals>;

  constructor(
    readonly name: string,
    readonly process: ChildProcess,
  ) {
    let buffer = '';
    process.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      buffer += chunk;
      for (let newline = buffer.indexOf('\n'); newline >= 0; newline = buffer.indexOf('\n')) {
        const line = buffer.slice(0, newline).trim();
        buffer = buffer.slice(newline + 1);
        if (line === 'ready') this.messages.push({ ready: true });
        else if (line.startsWith('{')) this.messages.push(JSON.parse(line) as Message);
        for (const listener of this.listeners) listener();
      }
    });
    this.exited = new Promise((resolve) => {
      process.once('exit', (code, signal) => {
        resolve(signal ?? code ?? -1);
        for (const listener of this.listeners) listener();
      });
    });
  }

  get running(): boolean {
    return this.process.exitCode === null && this.process.signalCode === null;
  }

  /** The first message (already received or to come) that `match` accepts. */
  waitFor(match: (message: Message) => boolean, timeout: number, what = 'a message'): Promise<Message> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.messages.find(match);
        if (found) done(() => resolve(found));
        else if (!this.running) done(() => reject(new Error(`${this.name} exited before ${what}`)));
      };
      const timer = setTimeout(
        () => done(() => reject(new Error(`${this.name}: no ${what} within ${timeout} ms`))),
        timeout,
      );
      const done = (settle: () => void) => {
        clearTimeout(timer);
        this.listeners.delete(check);
        settle();
      };
      this.listeners.add(check);
      check();
    });
  }

  /** Sends `signal` and, unless it only stops or continues the process, waits until it is gone. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (!this.running) return;
    this.process.kill(signal);
    if (signal !== 'SIGSTOP' && signal !== 'SIGCONT') await this.exited;
  }
}

/** Starts `test/faults/_helpers/<script>` under tsx with `env` added to this process's environment. */
export function spawnHelper(script: string, name: string, env: Record<string, string | number>): Child {
  const path = fileURLToPath(new URL(`./${script}`, import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', path], {
    env: { ...process.env, ...Object.fromEntries(Object.entries(env).map(([key, value]) => [key, String(value)])) },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  return new Child(name, child);
}

/** Kills whatever is still running (SIGCONT first, so a stopped child can die). */
export async function killAll(children: Iterable<Child>): Promise<void> {
  await Promise.all(
    [...children].map(async (child) => {
      if (!child.running) return;
      child.process.kill('SIGCONT');
      await child.kill('SIGKILL');
    }),
  );
}

/**
 * Starts a worker child (worker.ts), adds it to `children` (to be killed at teardown) and waits until it polls. It
 * records its job attempts under `name`, which must be unique in the run.
 */
export async function startWorker(
  children: Child[],
  name: string,
  env: Record<string, string | number>,
): Promise<Child> {
  const worker = spawnHelper('worker.ts', name, { ...env, WORKER: name });
  children.push(worker);
  await worker.waitFor((message) => message['ready'] === true, 60_000, 'ready');
  return worker;
}
