#!/usr/bin/env node
/**
 * The `temporal-coordination` command: a dev server, and a look at (or an operator's hand on) locks and queues.
 *
 * ```sh
 * npx temporal-coordination server                       # the pinned dev server with its Web UI, until Ctrl-C
 * npx temporal-coordination status lock invoice:42       # holders, tokens, waiters
 * npx temporal-coordination status queue customer:7      # pending, running, processed, failures
 * npx temporal-coordination status election reports      # who leads, and the term
 * npx temporal-coordination cancel customer:7 job-17      # a pending job never runs, a running one is told to stop
 * npx temporal-coordination release invoice:42 --token 1795869370050001
 * npx temporal-coordination repair lock invoice:42      # terminate its run if its workflow tasks keep failing
 * ```
 * It connects like every Temporal tool, with @temporalio/envconfig (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE,
 * TEMPORAL_API_KEY, TEMPORAL_TLS*, TEMPORAL_PROFILE); `--address` and `--namespace` override them.
 * @module
 */
import { createServer } from 'node:net';
import { parseArgs } from 'node:util';
import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import { DEFAULT_ID_PREFIX } from './context.js';
import { createCoordinator, type Coordinator } from './coordinator.js';
import { electionIdPrefix, lockIdPrefix, queueIdPrefix } from './ids.js';
import type { LeaderState } from './election/client.js';
import { READ_WRITE } from './workflows/lock-protocol.js';
import type { LockStatusResult } from './lock/client.js';
import { terminateIfStuck } from './lock/stuck-run.js';
import type { QueueStatusResult } from './queue/client.js';
import { retryInterceptors } from './rpc.js';

const USAGE = `Usage: temporal-coordination <command> [options]

Commands:
  server                        Start the pinned Temporal dev server with its Web UI; Ctrl-C stops it.
                                  --port <n>       frontend port (default 7233; the Web UI is on port + 1000)
                                  --namespace <ns> namespace to create (default "default")
                                  --db-file <path> keep the server's state in this SQLite file across restarts
  status lock <id>              Holders (fencing tokens, expiry), waiters of a lock or semaphore.
  status queue <key>            Pending and running jobs, processed count, recent failures of a queue key.
  status election <id>          Who leads an election, and the leader's term.
  cancel <key> <jobId>          Cancel a queue job: a pending job never runs, a running job's handler is told to stop.
                                  --reason <text>  why, kept with the job
  release <id> --token <n>      Force the release of the lease holding token <n> (for operators; recorded).
                                  --reason <text>  why, kept with the release
  repair lock <id>              Terminate the lock's run if its workflow task failed 3 times in a row with no success
                                  (it can make no progress); the next request starts a new run with higher tokens.

Options of status, cancel, release and repair:
  --address <host:port>         Temporal frontend (default: TEMPORAL_ADDRESS, else localhost:7233)
  --namespace <ns>              Namespace (default: TEMPORAL_NAMESPACE, else "default")
  --id-prefix <prefix>          The coordinator's idPrefix (default "${DEFAULT_ID_PREFIX}")
  --timeout <seconds>           How long to wait for the server and a worker's answer (default 10)
  --json                        Print the result as JSON

Connection settings come from the environment as for every Temporal tool (@temporalio/envconfig):
TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS*, TEMPORAL_PROFILE.`;

const SYNOPSIS =
  'Usage: temporal-coordination server | status lock|queue|election <id> | cancel <key> <jobId> | ' +
  'release <id> --token <n> | repair lock <id>';

/** A mistake in the command line: printed with the usage, exit code 2. */
class UsageError extends Error {}
/** A failure worth a one-line explanation rather than a stack trace: exit code 1. */
class CliError extends Error {}

const options = {
  port: { type: 'string' },
  namespace: { type: 'string' },
  'db-file': { type: 'string' },
  address: { type: 'string' },
  'id-prefix': { type: 'string' },
  timeout: { type: 'string' },
  token: { type: 'string' },
  reason: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof options; allowPositionals: true }>>['values'];

function parse(argv: string[]): { positionals: string[]; values: Values } {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** Rejects options that `command` does not take, so a typo is not silently ignored. */
function allowOnly(command: string, values: Values, allowed: readonly (keyof typeof options)[]): void {
  for (const [name, value] of Object.entries(values)) {
    if (value !== undefined && name !== 'help' && !allowed.includes(name as keyof typeof options)) {
      throw new UsageError(`\`${command}\` does not take --${name}`);
    }
  }
}

function positiveNumber(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) throw new UsageError(`--${name} must be a positive number, got "${text}"`);
  return value;
}

// ---- server ----

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer()
      .once('error', () => resolve(false))
      .once('listening', () => probe.close(() => resolve(true)))
      .listen(port, '127.0.0.1');
  });
}

/** The frontend port `--port` asks for, once it and the Web UI's (port + 1000) are known to be free. */
async function freePort(values: Values): Promise<number> {
  const port = values.port === undefined ? 7233 : Number(values.port);
  if (!Number.isInteger(port) || port < 1 || port > 64535) {
    throw new UsageError(`--port must be an integer from 1 to 64535, got "${values.port}"`);
  }
  for (const [what, p] of [
    ['frontend', port],
    ['Web UI', port + 1000],
  ] as const) {
    if (!(await portIsFree(p))) {
      throw new CliError(`Port ${p} (the ${what}) is already in use, perhaps by another Temporal server: pick --port`);
    }
  }
  return port;
}

async function server(values: Values): Promise<void> {
  const port = await freePort(values);
  let testing: typeof import('./testing/index.js');
  try {
    testing = await import('./testing/index.js');
  } catch (error) {
    throw new CliError(
      `The \`server\` command needs @temporalio/testing: npm install --save-dev @temporalio/testing@1.24.0 (${(error as Error).message})`,
    );
  }
  const env = { ...process.env };
  if (env['TEMPORAL_ADDRESS']) {
    console.error(`Ignoring TEMPORAL_ADDRESS=${env['TEMPORAL_ADDRESS']}: starting a server of our own.`);
    delete env['TEMPORAL_ADDRESS'];
  }
  console.error(`Starting the Temporal dev server (Temporal CLI ${testing.TEMPORAL_CLI_VERSION})...`);
  const devServer = await testing.startDevServer({
    env,
    port,
    headless: false,
    ...(values.namespace === undefined ? {} : { namespace: values.namespace }),
    ...(values['db-file'] === undefined ? {} : { dbFilename: values['db-file'] }),
  });
  const address = devServer.address.replace(/^localhost:/, '127.0.0.1:');
  console.log(
    [
      'Temporal dev server running:',
      `  address:   ${address}`,
      `  namespace: ${devServer.namespace}`,
      `  Web UI:    ${devServer.uiUrl ?? '(none)'}`,
      `  state:     ${values['db-file'] ? `kept in ${values['db-file']}` : 'in memory (lost on exit; keep it with --db-file)'}`,
      `  version:   Temporal server ${devServer.version ?? 'unknown'}`,
      `  log:       ${devServer.logFile ?? 'this output'}`,
      '',
      `Connect clients and workers with: export TEMPORAL_ADDRESS=${address}` +
        (devServer.namespace === 'default' ? '' : ` TEMPORAL_NAMESPACE=${devServer.namespace}`),
      'Ctrl-C to stop.',
    ].join('\n'),
  );
  // Signal listeners do not keep Node running: a timer does, until Ctrl-C.
  const alive = setInterval(() => {}, 1 << 30);
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  clearInterval(alive);
  console.error(`\n${signal}: stopping the dev server...`);
  // Ctrl-C in a terminal reaches the server process too, which may have stopped already.
  await devServer.stop().catch(() => {});
}

// ---- status and release: a client ----

interface Connected {
  readonly client: Client;
  readonly coordinator: Coordinator;
  readonly address: string;
  readonly namespace: string;
  readonly idPrefix: string;
  readonly timeout: number;
  close(): Promise<void>;
}

async function connect(values: Values): Promise<Connected> {
  const timeout = positiveNumber('timeout', values.timeout, 10) * 1000;
  let config: ReturnType<typeof loadClientConnectConfig>;
  try {
    config = loadClientConnectConfig();
  } catch (error) {
    throw new CliError(`Could not read the Temporal connection settings: ${(error as Error).message}`);
  }
  const address = values.address ?? config.connectionOptions.address ?? 'localhost:7233';
  const namespace = values.namespace ?? config.namespace ?? 'default';
  let connection: Connection;
  try {
    connection = await Connection.connect({
      ...config.connectionOptions,
      address,
      connectTimeout: timeout,
      interceptors: retryInterceptors(),
    });
  } catch (error) {
    throw new CliError(
      `Cannot reach a Temporal server at ${address} (${(error as Error).message}). Start one with ` +
        '`temporal-coordination server`, or point TEMPORAL_ADDRESS (or --address) at yours.',
    );
  }
  const idPrefix = values['id-prefix'] ?? DEFAULT_ID_PREFIX;
  const client = new Client({ connection, namespace });
  return {
    client,
    coordinator: createCoordinator({ client, idPrefix }),
    address,
    namespace,
    idPrefix,
    timeout,
    close: () => connection.close(),
  };
}

/** Which task queue the workflow runs on, if the server says so quickly. */
async function taskQueueOf(connected: Connected, workflowId: string): Promise<string | undefined> {
  try {
    const deadline = Date.now() + 2_000;
    const description = await connected.client.connection.withDeadline(deadline, () =>
      connected.client.workflow.getHandle(workflowId).describe(),
    );
    return description.taskQueue;
  } catch {
    return undefined;
  }
}

/** Runs `fn`, with a clear error if the server or a worker does not answer within the timeout. */
async function ask<T>(connected: Connected, what: string, workflowId: string, fn: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new CliError('')), connected.timeout);
  });
  try {
    return await Promise.race([fn(), late]);
  } catch (error) {
    if (error instanceof CliError) {
      const taskQueue = await taskQueueOf(connected, workflowId);
      throw new CliError(
        `No answer about ${what} within ${connected.timeout / 1000} s. A worker answers this query: is one polling ` +
          `${taskQueue ? `task queue ${taskQueue}` : 'its task queue'} in namespace ${connected.namespace}? ` +
          '(--timeout waits longer)',
      );
    }
    const message = error instanceof Error ? error.message : String(error);
    throw new CliError(
      `Could not read ${what} from ${connected.address} (namespace ${connected.namespace}): ${message}`,
    );
  } finally {
    clearTimeout(timer);
  }
}

function relative(date: Date): string {
  const ms = date.getTime() - Date.now();
  return ms >= 0 ? `in ${(ms / 1000).toFixed(1)} s` : `${(-ms / 1000).toFixed(1)} s ago`;
}

function printLock(status: LockStatusResult, workflowId: string): void {
  if (!status.running) {
    console.log(`lock ${status.resourceId}: idle (no workflow running: no holders, no waiters)`);
    return;
  }
  const kind =
    status.limit === 1 ? 'lock' : status.limit === READ_WRITE ? 'read-write lock' : `semaphore, limit ${status.limit}`;
  console.log(`lock ${status.resourceId} (${kind}; workflow ${workflowId})`);
  console.log(`  holders: ${status.holders.length}`);
  for (const holder of status.holders) {
    const claim = holder.claimed ? '' : ' (granted, not yet claimed)';
    const mode = holder.mode ? `  ${holder.mode}s` : '';
    console.log(
      `    token ${holder.token}${mode}  expires ${holder.expiresAt.toISOString()} (${relative(holder.expiresAt)})${claim}`,
    );
  }
  console.log(`  waiting: ${status.waiting}`);
  for (const forced of status.forcedReleases) {
    console.log(`  forced release of token ${forced.token} at ${forced.at.toISOString()}: ${forced.reason}`);
  }
}

function printQueue(status: QueueStatusResult, workflowId: string): void {
  if (!status.running) {
    console.log(`queue ${status.key}: idle (no workflow running: nothing pending or running)`);
    return;
  }
  console.log(`queue ${status.key} (workflow ${workflowId})`);
  console.log(`  paused:      ${status.paused ? 'yes (resumeQueue to continue)' : 'no'}`);
  console.log(`  concurrency: ${status.concurrency}`);
  console.log(`  pending:     ${status.pending}`);
  console.log(`  running:     ${status.runningJobs.length === 0 ? 'none' : status.runningJobs.join(', ')}`);
  console.log(`  processed:   ${status.processed}`);
  console.log(`  cancelled:   ${status.cancelled}`);
  if (status.rateLimit) {
    console.log(`  rate limit:  ${status.rateLimit.max} job start(s) per ${status.rateLimit.per} ms`);
  }
  for (const { jobId, runAt } of status.delayed) console.log(`  delayed:     ${jobId} until ${runAt.toISOString()}`);
  console.log(`  recent failures: ${status.recentFailures.length === 0 ? 'none' : status.recentFailures.length}`);
  for (const failure of status.recentFailures) {
    const when = new Date(failure.failedAt).toISOString();
    console.log(
      `    ${failure.jobId} (${failure.name}) failed at ${when} after ${failure.attempts} attempt(s): ${failure.error}`,
    );
  }
}

const statusKinds = {
  lock: { noun: 'resource ID', prefix: lockIdPrefix },
  queue: { noun: 'queue key', prefix: queueIdPrefix },
  election: { noun: 'election ID', prefix: electionIdPrefix },
} as const;

async function status(positionals: string[], values: Values): Promise<void> {
  const [kind, id, ...extra] = positionals;
  if (kind !== 'lock' && kind !== 'queue' && kind !== 'election') {
    throw new UsageError(
      kind === undefined
        ? '`status` needs `lock <id>`, `queue <key>` or `election <id>`'
        : `Unknown status kind \`${kind}\``,
    );
  }
  if (id === undefined || id === '') throw new UsageError(`\`status ${kind}\` needs the ${statusKinds[kind].noun}`);
  if (extra.length > 0) throw new UsageError(`Unexpected argument(s): ${extra.join(' ')}`);
  allowOnly('status', values, ['address', 'namespace', 'id-prefix', 'timeout', 'json']);
  const connected = await connect(values);
  try {
    const workflowId = statusKinds[kind].prefix(connected.idPrefix) + id;
    const { coordinator } = connected;
    const show = async <T>(read: () => Promise<T>, print: (result: T) => void) => {
      const result = await ask(connected, `${kind} ${id}`, workflowId, read);
      if (values.json) console.log(JSON.stringify(result, null, 2));
      else print(result);
    };
    if (kind === 'lock')
      await show(
        () => coordinator.lockStatus(id),
        (result) => printLock(result, workflowId),
      );
    else if (kind === 'queue')
      await show(
        () => coordinator.queueStatus(id),
        (result) => printQueue(result, workflowId),
      );
    else
      await show(
        () => coordinator.leader(id),
        (result) => printElection(id, result, workflowId),
      );
  } finally {
    await connected.close();
  }
}

function printElection(id: string, { leader, term }: LeaderState, workflowId: string): void {
  if (term === undefined) console.log(`election ${id}: nobody leads (workflow ${workflowId})`);
  else console.log(`election ${id}: ${leader} leads, term ${term} (workflow ${workflowId})`);
}

// ---- release ----

async function release(positionals: string[], values: Values): Promise<void> {
  const [id, ...extra] = positionals;
  if (id === undefined || id === '') throw new UsageError('`release` needs the resource ID: release <id> --token <n>');
  if (extra.length > 0) throw new UsageError(`Unexpected argument(s): ${extra.join(' ')}`);
  if (values.token === undefined) throw new UsageError('`release` needs --token <n>: the fencing token of the lease');
  const token = Number(values.token);
  if (!/^\d+$/.test(values.token) || !Number.isSafeInteger(token) || token < 1) {
    throw new UsageError(`--token must be a positive integer (a fencing token), got "${values.token}"`);
  }
  allowOnly('release', values, ['address', 'namespace', 'id-prefix', 'timeout', 'json', 'token', 'reason']);
  const connected = await connect(values);
  try {
    const workflowId = lockIdPrefix(connected.idPrefix) + id;
    const before = await ask(connected, `lock ${id}`, workflowId, () => connected.coordinator.lockStatus(id));
    if (!before.holders.some((holder) => holder.token === token)) {
      const held = before.holders.map((h) => h.token).join(', ');
      throw new CliError(
        `Token ${token} does not hold ${id}: ` +
          (before.running ? `its holders are ${held ? `tokens ${held}` : 'none'}` : 'the lock is idle') +
          '. Nothing was released.',
      );
    }
    const reason = values.reason ?? `temporal-coordination release (CLI, pid ${process.pid})`;
    const result = await ask(connected, `the release of ${id}`, workflowId, () =>
      connected.coordinator.forceRelease(id, token, { reason }),
    );
    if (values.json) console.log(JSON.stringify({ ...result, token, reason }, null, 2));
    else if (!result.released)
      throw new CliError(`Token ${token} no longer held ${id} (released or expired meanwhile).`);
    else console.log(`Released token ${token} of ${id} (reason: ${reason}). Its holder's next renewal fails.`);
  } finally {
    await connected.close();
  }
}

// ---- cancel ----

async function cancel(positionals: string[], values: Values): Promise<void> {
  const [key, jobId, ...extra] = positionals;
  if (key === undefined || key === '' || jobId === undefined || jobId === '') {
    throw new UsageError('`cancel` needs the queue key and the job ID: cancel <key> <jobId>');
  }
  if (extra.length > 0) throw new UsageError(`Unexpected argument(s): ${extra.join(' ')}`);
  allowOnly('cancel', values, ['address', 'namespace', 'id-prefix', 'timeout', 'json', 'reason']);
  const connected = await connect(values);
  try {
    const workflowId = queueIdPrefix(connected.idPrefix) + key;
    const reason = values.reason ?? `temporal-coordination cancel (CLI, pid ${process.pid})`;
    const result = await ask(connected, `the cancel of ${jobId} on ${key}`, workflowId, () =>
      connected.coordinator.cancelJob(key, jobId, { reason }),
    );
    if (values.json) console.log(JSON.stringify({ ...result, key, jobId, reason }, null, 2));
    else if (!result.cancelled)
      throw new CliError(`Job ${jobId} of queue ${key} had finished or is unknown: nothing was cancelled.`);
    else console.log(`Cancelled job ${jobId} of queue ${key} (reason: ${reason}).`);
  } finally {
    await connected.close();
  }
}

// ---- repair ----

async function repair(positionals: string[], values: Values): Promise<void> {
  const [kind, id, ...extra] = positionals;
  if (kind !== 'lock') throw new UsageError('`repair` takes `lock <id>`');
  if (id === undefined || id === '') throw new UsageError('`repair lock` needs the resource ID: repair lock <id>');
  if (extra.length > 0) throw new UsageError(`Unexpected argument(s): ${extra.join(' ')}`);
  allowOnly('repair', values, ['address', 'namespace', 'id-prefix', 'timeout', 'json']);
  const connected = await connect(values);
  try {
    const workflowId = lockIdPrefix(connected.idPrefix) + id;
    const failures = await connected.client.connection.withDeadline(Date.now() + connected.timeout, () =>
      terminateIfStuck(connected.client.workflow, workflowId).catch((error: unknown) => {
        if (error instanceof WorkflowNotFoundError) return undefined;
        throw error;
      }),
    );
    if (values.json) console.log(JSON.stringify({ terminated: failures !== undefined, failures }, null, 2));
    else if (failures === undefined) console.log(`${id} is idle or making progress: nothing to repair.`);
    else
      console.log(
        `Terminated the run of ${id} after ${failures} failed workflow tasks; the next request starts a new run.`,
      );
  } finally {
    await connected.close();
  }
}

// ---- main ----

async function main(argv: string[]): Promise<void> {
  const { positionals, values } = parse(argv);
  const [command, ...rest] = positionals;
  if (values.help || command === 'help') {
    console.log(USAGE);
    return;
  }
  switch (command) {
    case 'server':
      if (rest.length > 0) throw new UsageError(`Unexpected argument(s): ${rest.join(' ')}`);
      allowOnly('server', values, ['port', 'namespace', 'db-file']);
      return server(values);
    case 'status':
      return status(rest, values);
    case 'cancel':
      return cancel(rest, values);
    case 'release':
      return release(rest, values);
    case 'repair':
      return repair(rest, values);
    case undefined:
      throw new UsageError('Which command?');
    default:
      throw new UsageError(`Unknown command \`${command}\``);
  }
}

try {
  await main(process.argv.slice(2));
} catch (error) {
  if (error instanceof UsageError) {
    console.error(
      `temporal-coordination: ${error.message}\n${SYNOPSIS}\nRun \`temporal-coordination --help\` for the options.`,
    );
    process.exitCode = 2;
  } else if (error instanceof CliError) {
    console.error(`temporal-coordination: ${error.message}`);
    process.exitCode = 1;
  } else {
    console.error('temporal-coordination: unexpected error:', error);
    process.exitCode = 1;
  }
}
// A query left unanswered past --timeout must not keep the process alive.
process.exit(process.exitCode ?? 0);
