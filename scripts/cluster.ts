// A 2-node Temporal cluster on PostgreSQL: what users run when they outgrow one machine. Each node is one `server`
// process running all four services (frontend, history, matching, worker); the nodes find each other through the
// `cluster_membership` table and form one ringpop ring on 127.0.0.1.
//
// Usage: tsx scripts/cluster.ts start|stop|status|kill <node>|test [test files...]
//   (npm run cluster:start / cluster:stop / test:cluster). `test` starts the cluster and runs `npm test` against it
//   (by default the lock and queue suites); `kill node2` SIGKILLs one node, as the fault suite's cluster case does.
//
// - Builds the pinned server and its schema tool with Go once (cached next to the pinned CLI).
// - Creates the databases temporal_tc and temporal_tc_visibility and brings their schema up to date.
// - Starts both nodes detached; logs, PID files and configs live in <cache>/cluster/.
// - `start` is idempotent: nodes already up are left alone. `stop` stops both and removes the PID files.
//
// Environment: PGHOST (127.0.0.1), PGPORT (5432), PGUSER (postgres), PGPASSWORD (''), TEMPORAL_CLUSTER_PORT (17233:
// node 1's frontend; node 2 listens 1,000 ports higher), TEMPORAL_COORDINATION_CACHE.
import { spawn } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time.js';
import pg from 'pg';
import { cacheDirectory } from '../lib/testing/index.js';
import { isExecutable, run } from '../lib/testing/resolve-server.js';

const SERVER_VERSION = 'v1.29.1';
const SERVER_MODULE = 'go.temporal.io/server';
const DATABASES = { temporal: 'temporal_tc', visibility: 'temporal_tc_visibility' } as const;
const READY_TIMEOUT = 180_000;

const postgres = {
  host: process.env['PGHOST'] ?? '127.0.0.1',
  port: Number(process.env['PGPORT'] ?? 5432),
  user: process.env['PGUSER'] ?? 'postgres',
  password: process.env['PGPASSWORD'] ?? '',
};

const basePort = Number(process.env['TEMPORAL_CLUSTER_PORT'] ?? 17233);
const binDir = join(cacheDirectory(), `temporal-server-${SERVER_VERSION}`);
const stateDir = join(cacheDirectory(), 'cluster');
const serverPath = join(binDir, 'server');
const sqlToolPath = join(binDir, 'sql');

export interface Node {
  readonly name: string;
  /** gRPC, membership and HTTP ports of each service. */
  readonly ports: Record<'frontend' | 'history' | 'matching' | 'worker', { grpc: number; membership: number }>;
  readonly httpPort: number;
  readonly frontend: string;
}

function node(index: number): Node {
  // frontend 17233, history +1, matching +2, worker +6, membership ports 700 lower (16533...), HTTP +10; node 2 +1,000.
  const grpc = basePort + 1_000 * index;
  const service = (offset: number) => ({ grpc: grpc + offset, membership: grpc - 700 + offset });
  return {
    name: `node${index + 1}`,
    ports: { frontend: service(0), history: service(1), matching: service(2), worker: service(6) },
    httpPort: grpc + 10,
    frontend: `127.0.0.1:${grpc}`,
  };
}
export const nodes = [node(0), node(1)];
export const NAMESPACE = 'default';

const log = (message: string) => console.error(`cluster: ${message}`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const seconds = (since: number) => `${((performance.now() - since) / 1000).toFixed(1)} s`;

const goEnv = () => ({ ...process.env, GOBIN: binDir, GOTOOLCHAIN: 'local' });

/** Builds the server and the schema tool once, like the pinned CLI (lib/testing/resolve-server.ts). */
async function ensureBinaries(): Promise<void> {
  if (isExecutable(serverPath) && isExecutable(sqlToolPath)) return;
  log(
    `building the Temporal server ${SERVER_VERSION} and its schema tool with Go, once; this takes several minutes ` +
      `on a fresh machine. They are cached in ${binDir}.`,
  );
  const started = performance.now();
  mkdirSync(binDir, { recursive: true });
  await run(
    'go',
    ['install', `${SERVER_MODULE}/cmd/server@${SERVER_VERSION}`, `${SERVER_MODULE}/cmd/tools/sql@${SERVER_VERSION}`],
    goEnv(),
  );
  log(`built the server in ${seconds(started)}.`);
}

/** The module source (for the versioned schema files): in Go's module cache after the build, downloaded otherwise. */
async function moduleDir(): Promise<string> {
  const output = await run('go', ['mod', 'download', '-json', `${SERVER_MODULE}@${SERVER_VERSION}`], goEnv());
  const { Dir } = JSON.parse(output) as { Dir?: string };
  if (!Dir) throw new Error(`go mod download did not report where ${SERVER_MODULE}@${SERVER_VERSION} is`);
  return Dir;
}

async function withPostgres<T>(database: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ ...postgres, database });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Creates both databases if needed and applies every schema version not applied yet. */
async function ensureSchema(): Promise<void> {
  const sourceDir = await moduleDir();
  for (const [kind, database] of Object.entries(DATABASES)) {
    const exists = await withPostgres('postgres', async (client) => {
      const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
      return rowCount === 1;
    });
    const tool = (...args: string[]) =>
      run(sqlToolPath, [
        '--plugin',
        'postgres12',
        '--ep',
        postgres.host,
        '-p',
        String(postgres.port),
        '-u',
        postgres.user,
        ...(postgres.password ? ['--pw', postgres.password] : []),
        '--db',
        database,
        ...args,
      ]);
    if (!exists) {
      log(`creating database ${database}`);
      await tool('create-database');
    }
    const versioned = await withPostgres(database, async (client) => {
      const { rowCount } = await client.query("SELECT 1 FROM pg_tables WHERE tablename = 'schema_version'");
      return rowCount === 1;
    });
    if (!versioned) {
      log(`setting up the schema of ${database}`);
      await tool('setup-schema', '-v', '0.0');
    }
    // A no-op when the schema is current; applies new versions after an upgrade of SERVER_VERSION.
    await tool('update-schema', '-d', join(sourceDir, 'schema', 'postgresql', 'v12', kind, 'versioned'));
  }
}

function datastore(database: string, maxConns: number) {
  return {
    sql: {
      pluginName: 'postgres12',
      databaseName: database,
      connectAddr: `${postgres.host}:${postgres.port}`,
      connectProtocol: 'tcp',
      user: postgres.user,
      password: postgres.password,
      maxConns,
      maxIdleConns: maxConns,
      maxConnLifetime: '1h',
    },
  };
}

/** The node's config, after the module's config/development-postgres12.yaml (JSON is valid YAML). */
function nodeConfig(node: Node): unknown {
  const rpc = (name: keyof Node['ports']) => ({
    grpcPort: node.ports[name].grpc,
    membershipPort: node.ports[name].membership,
    bindOnLocalHost: true,
    ...(name === 'frontend' ? { httpPort: node.httpPort } : {}),
  });
  return {
    log: { stdout: true, level: 'warn' },
    persistence: {
      defaultStore: 'postgres-default',
      visibilityStore: 'postgres-visibility',
      numHistoryShards: 4,
      datastores: {
        // Per service: a node runs four services, each with its own pools, so a node can hold 4 x (6 + 2) = 32
        // connections and the cluster 64 of PostgreSQL's default 100, leaving room for the tests' own clients.
        'postgres-default': datastore(DATABASES.temporal, 6),
        'postgres-visibility': datastore(DATABASES.visibility, 2),
      },
    },
    global: { membership: { maxJoinDuration: '30s', broadcastAddress: '127.0.0.1' } },
    services: {
      frontend: { rpc: rpc('frontend') },
      history: { rpc: rpc('history') },
      matching: { rpc: rpc('matching') },
      worker: { rpc: rpc('worker') },
    },
    clusterMetadata: {
      enableGlobalNamespace: false,
      failoverVersionIncrement: 10,
      masterClusterName: 'active',
      currentClusterName: 'active',
      clusterInformation: {
        active: { enabled: true, initialFailoverVersion: 1, rpcName: 'frontend', rpcAddress: nodes[0]!.frontend },
      },
    },
    dcRedirectionPolicy: { policy: 'noop' },
    archival: { history: { state: 'disabled' }, visibility: { state: 'disabled' } },
    namespaceDefaults: { archival: { history: { state: 'disabled' }, visibility: { state: 'disabled' } } },
    // The node's system worker talks to its own frontend.
    publicClient: { hostPort: node.frontend },
    dynamicConfigClient: { filepath: join(stateDir, 'dynamicconfig.yaml'), pollInterval: '10s' },
  };
}

/** Server defaults, except what the dev server also changes (frontend visibility RPS). */
const dynamicConfig = `frontend.namespaceRPS.visibility:
  - value: 100
    constraints: {}
`;

const pidFile = (node: Node) => join(stateDir, `${node.name}.pid`);
const logFile = (node: Node) => join(stateDir, `${node.name}.log`);

/** The PID of the node's server if it is running (checked against /proc, so a recycled PID is not mistaken). */
function runningPid(node: Node): number | undefined {
  if (!existsSync(pidFile(node))) return undefined;
  const pid = Number(readFileSync(pidFile(node), 'utf8').trim());
  try {
    process.kill(pid, 0);
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (cmdline.includes(serverPath) && cmdline.includes(node.name)) return pid;
  } catch {
    // Gone.
  }
  return undefined;
}

function startNode(node: Node): number {
  const configDir = join(stateDir, 'config');
  mkdirSync(configDir, { recursive: true });
  writeFileSync(join(configDir, `${node.name}.yaml`), JSON.stringify(nodeConfig(node), null, 2) + '\n');
  const out = openSync(logFile(node), 'a');
  const child = spawn(
    serverPath,
    ['--root', stateDir, '--config', 'config', '--env', node.name, '--allow-no-auth', 'start'],
    {
      cwd: stateDir,
      detached: true,
      stdio: ['ignore', out, out],
    },
  );
  child.unref();
  writeFileSync(pidFile(node), `${child.pid}\n`);
  log(`started ${node.name} (pid ${child.pid}), log ${logFile(node)}`);
  return child.pid!;
}

/**
 * The services of each node that have not joined the membership yet: a node's service joins by writing a row (keyed by
 * its membership port) to the table the nodes bootstrap their ring from, and heartbeating it. Rows from before the
 * node's start (a previous process on the same port) do not count.
 */
async function missingMembers(): Promise<string[]> {
  const { rows } = await withPostgres(DATABASES.temporal, (client) =>
    client.query<{ rpc_port: number; session_start: Date }>(
      "SELECT rpc_port, session_start FROM cluster_membership WHERE last_heartbeat > now() - interval '60 seconds'",
    ),
  );
  return nodes.flatMap((node) => {
    const since = statSync(pidFile(node)).mtimeMs - 1_000;
    return Object.entries(node.ports)
      .filter(
        ([, { membership }]) =>
          !rows.some((row) => row.rpc_port === membership && row.session_start.getTime() >= since),
      )
      .map(([service]) => `${node.name} ${service}`);
  });
}

/** How many of the history shards each node owns: both owning some shows they share one ring. */
async function shardOwners(): Promise<string> {
  return withPostgres(DATABASES.temporal, async (client) => {
    const { rows } = await client.query<{ data: Buffer }>('SELECT data FROM shards');
    return nodes
      .map((node) => {
        const owner = Buffer.from(`127.0.0.1:${node.ports.history.grpc}`);
        return `${node.name} ${rows.filter((row) => row.data.includes(owner)).length}`;
      })
      .join(', ');
  });
}

/** Until a node has written the cluster metadata (once per database, at its first start). */
async function clusterMetadataWritten(): Promise<void> {
  const deadline = performance.now() + READY_TIMEOUT;
  for (;;) {
    const { rowCount } = await withPostgres(DATABASES.temporal, (client) =>
      client.query('SELECT 1 FROM cluster_metadata_info'),
    );
    if (rowCount) return;
    if (runningPid(nodes[0]!) === undefined) throw new Error(`${nodes[0]!.name} exited; see ${logFile(nodes[0]!)}`);
    if (performance.now() > deadline) throw new Error('no cluster metadata was written');
    await sleep(200);
  }
}

async function ensureNamespace(connection: Connection): Promise<void> {
  try {
    await connection.workflowService.registerNamespace({
      namespace: NAMESPACE,
      workflowExecutionRetentionPeriod: msToTs('1 day'),
    });
    log(`registered namespace ${NAMESPACE}`);
  } catch (error) {
    // 6 = ALREADY_EXISTS.
    if ((error as { code?: number }).code !== 6) throw error;
  }
}

/** Until both frontends serve the namespace and every service has 2 live members. */
async function waitReady(): Promise<void> {
  const deadline = performance.now() + READY_TIMEOUT;
  let lastProblem = '';
  const connections: Connection[] = [];
  try {
    for (;;) {
      if (performance.now() > deadline) {
        throw new Error(`the cluster was not ready within ${READY_TIMEOUT / 1000} s: ${lastProblem}`);
      }
      for (const node of nodes) {
        if (runningPid(node) === undefined) throw new Error(`${node.name} exited; see ${logFile(node)}`);
      }
      try {
        while (connections.length < nodes.length) {
          connections.push(
            await Connection.connect({ address: nodes[connections.length]!.frontend, connectTimeout: 2_000 }),
          );
        }
        await ensureNamespace(connections[0]!);
        for (const connection of connections) {
          await connection.workflowService.describeNamespace({ namespace: NAMESPACE });
        }
        const missing = await missingMembers();
        if (missing.length === 0) return;
        lastProblem = `not in the membership yet: ${missing.join(', ')}`;
      } catch (error) {
        lastProblem = (error as Error).message;
      }
      await sleep(500);
    }
  } finally {
    await Promise.all(connections.map((connection) => connection.close()));
  }
}

/** Starts the nodes that are not running (building the server first if needed) and waits until the cluster is ready. */
export async function start(): Promise<void> {
  const started = performance.now();
  mkdirSync(stateDir, { recursive: true });
  await ensureBinaries();
  const pids = nodes.map(runningPid);
  if (pids.every((pid) => pid !== undefined)) {
    log('both nodes are already running');
  } else {
    await ensureSchema();
    writeFileSync(join(stateDir, 'dynamicconfig.yaml'), dynamicConfig);
    // On a fresh database both nodes would race to write the cluster metadata and one would exit: the first writes it.
    if (pids[0] === undefined) startNode(nodes[0]!);
    await clusterMetadataWritten();
    for (const [i, node] of nodes.entries()) if (i > 0 && pids[i] === undefined) startNode(node);
  }
  await waitReady();
  log(`cluster ready in ${seconds(started)}; history shards owned: ${await shardOwners()}`);
  for (const node of nodes) console.log(`${node.name}: frontend ${node.frontend} (pid ${runningPid(node)})`);
  console.log(`export TEMPORAL_ADDRESS=${nodes[0]!.frontend} TEMPORAL_NAMESPACE=${NAMESPACE}`);
}

export async function stop(): Promise<void> {
  for (const node of nodes) {
    const pid = runningPid(node);
    if (pid !== undefined) {
      process.kill(pid, 'SIGTERM');
      const deadline = performance.now() + 20_000;
      while (runningPid(node) !== undefined && performance.now() < deadline) await sleep(200);
      if (runningPid(node) !== undefined) process.kill(pid, 'SIGKILL');
      log(`stopped ${node.name} (pid ${pid})`);
    }
    rmSync(pidFile(node), { force: true });
  }
}

function status(): void {
  for (const node of nodes) {
    const pid = runningPid(node);
    console.log(`${node.name}: ${pid === undefined ? 'stopped' : `running (pid ${pid})`}, frontend ${node.frontend}`);
  }
}

/** SIGKILLs one node, as a crash would, and waits until it is gone. */
export async function kill(name: string): Promise<void> {
  const target = nodes.find((candidate) => candidate.name === name);
  if (!target) throw new TypeError(`No node ${name}; the nodes are ${nodes.map((n) => n.name).join(', ')}`);
  const pid = runningPid(target);
  if (pid === undefined) throw new Error(`${name} is not running`);
  process.kill(pid, 'SIGKILL');
  while (runningPid(target) !== undefined) await sleep(50);
  log(`killed ${name} (pid ${pid})`);
}

/**
 * Runs `npm test` with `files` (the lock and queue suites by default) against the cluster, one test at a time: on 2
 * cores the cluster's PostgreSQL transactions are the bottleneck, and the 1,000-waiter test alone keeps one shard
 * busy for 10 to 20 s, long enough for a concurrent test's renewals to miss the 5 s claim window.
 */
async function test(files: string[]): Promise<number> {
  await start();
  const suites = files.length > 0 ? files : ['test/lock.test.ts', 'test/lock-protocol.test.ts', 'test/queue.test.ts'];
  const child = spawn('npm', ['test', '--', '--serial', '--concurrency', '1', ...suites], {
    stdio: 'inherit',
    env: { ...process.env, TEMPORAL_ADDRESS: nodes[0]!.frontend, TEMPORAL_NAMESPACE: NAMESPACE },
  });
  return new Promise((resolve) => child.once('close', (code) => resolve(code ?? 1)));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [command, ...args] = process.argv.slice(2);
  if (command === 'start') await start();
  else if (command === 'stop') await stop();
  else if (command === 'status') status();
  else if (command === 'kill' && args[0]) await kill(args[0]);
  else if (command === 'test') process.exitCode = await test(args);
  else {
    console.error('Usage: tsx scripts/cluster.ts start|stop|status|kill <node>|test [test files...]');
    process.exit(2);
  }
}
