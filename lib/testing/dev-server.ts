import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Connection } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DevServerUnavailableError, resolveDevServer, type ResolveDevServerOptions } from './resolve-server.js';

export interface DevServerOptions extends ResolveDevServerOptions {
  /**
   * SQLite file to persist to, so the server can be stopped and started again with its workflows intact.
   * @default undefined (in memory)
   */
  readonly dbFilename?: string;
  /**
   * Run without the Temporal Web UI.
   * @default true
   */
  readonly headless?: boolean;
  /**
   * Port of the frontend (gRPC). The Web UI, when on, listens on `port + 1000`.
   * @default a free port
   */
  readonly port?: number;
  /**
   * Namespace to create and use.
   * @default 'default'
   */
  readonly namespace?: string;
  /**
   * Dynamic config values, passed as `--dynamic-config-value key=value`; for example
   * `{ 'limit.historyCount.suggestContinueAsNew': 60 }` makes continue-as-new happen after 60 events.
   * @default {}
   */
  readonly dynamicConfig?: Readonly<Record<string, string | number | boolean>>;
  /**
   * File the server's output (its start banner, warnings and errors) is appended to, so it stays out of the
   * caller's output. A server the SDK downloaded writes to this process's output instead.
   * @default `temporal-dev-server-<port>.log` in the OS temporary folder
   */
  readonly logFile?: string;
}

export interface DevServer {
  /** `host:port` of the frontend. */
  readonly address: string;
  readonly namespace: string;
  /** Web UI address, or `undefined` when headless or when the server was given by `TEMPORAL_ADDRESS`. */
  readonly uiUrl: string | undefined;
  /** The server's version as it reports it (for example `1.29.1`), or `undefined` for a server given by `TEMPORAL_ADDRESS`. */
  readonly version: string | undefined;
  /** The file the server's output goes to, or `undefined` when it goes to this process's output or is not ours. */
  readonly logFile: string | undefined;
  /** Stops the server (a no-op for a server given by `TEMPORAL_ADDRESS`). */
  stop(): Promise<void>;
}

/** How long a server we start may take to answer; a loaded 2-core machine needs more than the SDK's 5 s. */
const STARTUP_TIMEOUT = 30_000;

function dynamicConfigArgs(values: Readonly<Record<string, string | number | boolean>>): string[] {
  // The dev server parses each value as YAML, so strings are quoted to stay strings.
  return Object.entries(values).flatMap(([key, value]) => [
    '--dynamic-config-value',
    `${key}=${typeof value === 'string' ? JSON.stringify(value) : String(value)}`,
  ]);
}

/**
 * Starts a Temporal dev server for tests, demos and benchmarks, or uses the one `TEMPORAL_ADDRESS` names.
 * See {@link resolveDevServer} for where the server comes from.
 */
export async function startDevServer(options: DevServerOptions = {}): Promise<DevServer> {
  const env = options.env ?? process.env;
  const source = await resolveDevServer(options);
  switch (source.kind) {
    case 'address':
      return {
        address: source.address,
        namespace: options.namespace ?? env['TEMPORAL_NAMESPACE'] ?? 'default',
        uiUrl: undefined,
        version: undefined,
        logFile: undefined,
        stop: async () => {},
      };
    case 'executable':
      return startExecutable(source.path, options);
    case 'download':
      return startDownloaded(source.reasons, options);
  }
}

/** The arguments of `temporal server start-dev`: the SDK's own set, so both ways start the same server. */
function serverArgs(port: number, options: DevServerOptions): string[] {
  const headless = options.headless ?? true;
  return [
    ...['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(port)],
    ...['--namespace', options.namespace ?? 'default', '--log-format', 'pretty', '--log-level', 'warn'],
    ...(options.dbFilename === undefined ? [] : ['--db-filename', options.dbFilename]),
    ...(headless ? ['--headless'] : ['--ui-port', String(port + 1000)]),
    ...dynamicConfigArgs({
      'frontend.enableServerVersionCheck': false,
      'frontend.enableUpdateWorkflowExecution': true,
      'frontend.enableUpdateWorkflowExecutionAsyncAccepted': true,
      ...options.dynamicConfig,
    }),
  ];
}

/** Runs the CLI at `path` with its output in a file, and resolves once the server answers. */
async function startExecutable(path: string, options: DevServerOptions): Promise<DevServer> {
  const port = options.port ?? (await freePort());
  const address = `127.0.0.1:${port}`;
  const logFile = options.logFile ?? join(tmpdir(), `temporal-dev-server-${port}.log`);
  const output = openSync(logFile, 'a');
  const child = spawn(path, serverArgs(port, options), { stdio: ['ignore', output, output] });
  closeSync(output);
  // The server must not outlive this process, even one that exits without calling stop().
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  // 'error' without 'exit' when the executable cannot be started at all.
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()).once('error', () => resolve()));
  child.unref();
  const stop = async () => {
    process.removeListener('exit', killOnExit);
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.ref(); // keeps this process up until the server is gone
    child.kill('SIGKILL');
    await exited;
  };
  let version: string;
  try {
    version = await serverVersion(address, exited);
  } catch (error) {
    await stop();
    const tail = readFileSync(logFile, 'utf8').trim().split('\n').slice(-20).join('\n');
    throw new Error(`The Temporal dev server at ${address} did not start (${(error as Error).message}):\n${tail}`, {
      cause: error,
    });
  }
  const headless = options.headless ?? true;
  const uiUrl = headless ? undefined : `http://127.0.0.1:${port + 1000}`;
  return { address, namespace: options.namespace ?? 'default', uiUrl, version, logFile, stop };
}

/** Polls `address` until the server answers with its version; rejects if `exited` settles first or on timeout. */
async function serverVersion(address: string, exited: Promise<void>): Promise<string> {
  let gone = false;
  void exited.then(() => (gone = true));
  const deadline = Date.now() + STARTUP_TIMEOUT;
  let lastError: unknown;
  while (!gone && Date.now() < deadline) {
    try {
      const connection = await Connection.connect({ address, connectTimeout: 1_000 });
      try {
        const info = await connection.workflowService.getSystemInfo({});
        return info.serverVersion ?? 'unknown';
      } finally {
        await connection.close();
      }
    } catch (error) {
      lastError = error;
      await sleep(100);
    }
  }
  throw new Error(gone ? 'it exited' : `no answer in ${STARTUP_TIMEOUT / 1000} s: ${String(lastError)}`);
}

/** A TCP port nobody listens on (taken from the OS, then freed). */
async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Starts the server through the SDK, which downloads it; its output goes to this process's output. */
async function startDownloaded(reasons: readonly string[], options: DevServerOptions): Promise<DevServer> {
  const headless = options.headless ?? true;
  const namespace = options.namespace ?? 'default';
  let testEnv: TestWorkflowEnvironment;
  try {
    testEnv = await TestWorkflowEnvironment.createLocal({
      server: {
        namespace,
        ...(options.port === undefined ? {} : { port: options.port }),
        ...(options.dbFilename === undefined ? {} : { dbFilename: options.dbFilename }),
        ui: !headless,
        extraArgs: dynamicConfigArgs(options.dynamicConfig ?? {}),
      },
    });
  } catch (error) {
    throw new DevServerUnavailableError([...reasons, `the SDK download failed: ${String(error)}`], { cause: error });
  }
  const [host, port] = splitAddress(testEnv.address);
  const { serverVersion } = await testEnv.connection.workflowService.getSystemInfo({});
  return {
    address: testEnv.address,
    namespace,
    uiUrl: headless ? undefined : `http://${host}:${port + 1000}`,
    version: serverVersion ?? undefined,
    logFile: undefined,
    stop: () => testEnv.teardown(),
  };
}

function splitAddress(address: string): [string, number] {
  const separator = address.lastIndexOf(':');
  return [address.slice(0, separator), Number(address.slice(separator + 1))];
}
