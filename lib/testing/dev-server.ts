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
}

export interface DevServer {
  /** `host:port` of the frontend. */
  readonly address: string;
  readonly namespace: string;
  /** Web UI address, or `undefined` when headless or when the server was given by `TEMPORAL_ADDRESS`. */
  readonly uiUrl: string | undefined;
  /** Stops the server (a no-op for a server given by `TEMPORAL_ADDRESS`). */
  stop(): Promise<void>;
}

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
  if (source.kind === 'address') {
    return {
      address: source.address,
      namespace: options.namespace ?? env['TEMPORAL_NAMESPACE'] ?? 'default',
      uiUrl: undefined,
      stop: async () => {},
    };
  }
  const headless = options.headless ?? true;
  const namespace = options.namespace ?? 'default';
  let testEnv: TestWorkflowEnvironment;
  try {
    testEnv = await TestWorkflowEnvironment.createLocal({
      server: {
        executable: source.kind === 'executable' ? { type: 'existing-path', path: source.path } : undefined,
        namespace,
        ...(options.port === undefined ? {} : { port: options.port }),
        ...(options.dbFilename === undefined ? {} : { dbFilename: options.dbFilename }),
        ui: !headless,
        extraArgs: dynamicConfigArgs(options.dynamicConfig ?? {}),
      },
    });
  } catch (error) {
    if (source.kind === 'download') {
      throw new DevServerUnavailableError([...source.reasons, `the SDK download failed: ${String(error)}`], {
        cause: error,
      });
    }
    throw error;
  }
  const [host, port] = splitAddress(testEnv.address);
  return {
    address: testEnv.address,
    namespace,
    uiUrl: headless ? undefined : `http://${host}:${port + 1000}`,
    stop: () => testEnv.teardown(),
  };
}

function splitAddress(address: string): [string, number] {
  const separator = address.lastIndexOf(':');
  return [address.slice(0, separator), Number(address.slice(separator + 1))];
}
