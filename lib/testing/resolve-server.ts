import { spawn } from 'node:child_process';
import { accessSync, constants, mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';

/** The Temporal CLI release we build and test against (it embeds Temporal server 1.29.1). */
export const TEMPORAL_CLI_VERSION = 'v1.5.1';
const TEMPORAL_CLI_MODULE = 'github.com/temporalio/cli/cmd/temporal';

/** Where a Temporal dev server comes from, in the order {@link resolveDevServer} tries them. */
export type DevServerSource =
  | { kind: 'address'; address: string }
  | { kind: 'executable'; path: string; origin: 'TEMPORAL_CLI_PATH' | 'PATH' | 'cache' | 'go-build' }
  | { kind: 'download'; reasons: readonly string[] };

export interface ResolveDevServerOptions {
  /**
   * Environment to read `TEMPORAL_ADDRESS`, `TEMPORAL_CLI_PATH`, `PATH` and `TEMPORAL_COORDINATION_CACHE` from.
   * @default process.env
   */
  readonly env?: NodeJS.ProcessEnv;
  /**
   * Whether the SDK's download of the dev server may be the last resort.
   * @default true
   */
  readonly download?: boolean;
  /**
   * Where progress messages go (the Go build takes minutes on a fresh machine).
   * @default console.error
   */
  readonly log?: (message: string) => void;
}

/** Thrown when no Temporal server can be found, built or downloaded. The message lists every way to fix it. */
export class DevServerUnavailableError extends Error {
  override readonly name = 'DevServerUnavailableError';
  constructor(reasons: readonly string[], options?: ErrorOptions) {
    super(
      [
        'No Temporal server could be found, built or downloaded:',
        ...reasons.map((reason) => `  - ${reason}`),
        'Fix it in one of these ways:',
        '  1. point TEMPORAL_ADDRESS at a running server (for example `temporal server start-dev` elsewhere);',
        '  2. set TEMPORAL_CLI_PATH to a Temporal CLI executable, or put `temporal` on PATH;',
        `  3. install Go >= 1.25, so the pinned CLI is built once: go install ${TEMPORAL_CLI_MODULE}@${TEMPORAL_CLI_VERSION};`,
        '  4. allow internet access, so the Temporal SDK can download its dev server.',
      ].join('\n'),
      options,
    );
  }
}

/** The folder, outside any checkout, where the pinned CLI build is cached. */
export function cacheDirectory(env: NodeJS.ProcessEnv = process.env): string {
  return env['TEMPORAL_COORDINATION_CACHE'] ?? join(homedir(), '.cache', 'temporal-coordination');
}

/** The path the pinned CLI build lives at once built. */
export function pinnedCliPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(cacheDirectory(env), `temporal-cli-${TEMPORAL_CLI_VERSION}`, 'temporal');
}

/** Whether `path` is a file this process may execute. */
export function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function findOnPath(name: string, env: NodeJS.ProcessEnv): string | undefined {
  return (env['PATH'] ?? '')
    .split(delimiter)
    .filter(Boolean)
    .map((dir) => join(dir, name))
    .find(isExecutable);
}

/** Runs a command to completion and resolves with its output; rejects with the output's tail when it fails. */
export function run(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    child.once('error', reject);
    child.once('close', (code) =>
      code === 0
        ? resolve(output)
        : reject(new Error(`${command} ${args.join(' ')} exited with ${code}: ${output.trim().slice(-2000)}`)),
    );
  });
}

async function buildPinnedCli(go: string, env: NodeJS.ProcessEnv, log: (message: string) => void): Promise<string> {
  const target = pinnedCliPath(env);
  log(
    `temporal-coordination: building the Temporal dev server (CLI ${TEMPORAL_CLI_VERSION}) with Go, once; ` +
      `this takes a few minutes on a fresh machine. It is cached at ${target}.`,
  );
  const started = performance.now();
  mkdirSync(dirname(target), { recursive: true });
  await run(go, ['install', `${TEMPORAL_CLI_MODULE}@${TEMPORAL_CLI_VERSION}`], {
    ...env,
    GOBIN: dirname(target),
    // Never let `go` fetch a different toolchain: the installed one is new enough.
    GOTOOLCHAIN: 'local',
  });
  if (!isExecutable(target)) throw new Error(`go install finished but ${target} is missing`);
  log(`temporal-coordination: built the dev server in ${((performance.now() - started) / 1000).toFixed(0)} s.`);
  return target;
}

/**
 * Finds a Temporal server to test against, building or downloading one only when nothing is there:
 * `TEMPORAL_ADDRESS`, then `TEMPORAL_CLI_PATH` or `temporal` on PATH, then the cached pinned build,
 * then a Go build of the pinned CLI, then the SDK's download.
 */
export async function resolveDevServer(options: ResolveDevServerOptions = {}): Promise<DevServerSource> {
  const env = options.env ?? process.env;
  const log = options.log ?? console.error;
  const address = env['TEMPORAL_ADDRESS'];
  if (address) return { kind: 'address', address };

  const explicit = env['TEMPORAL_CLI_PATH'];
  if (explicit) {
    if (!isExecutable(explicit))
      throw new DevServerUnavailableError([`TEMPORAL_CLI_PATH=${explicit} is not executable`]);
    return { kind: 'executable', path: explicit, origin: 'TEMPORAL_CLI_PATH' };
  }
  const onPath = findOnPath('temporal', env);
  if (onPath) return { kind: 'executable', path: onPath, origin: 'PATH' };

  const cached = pinnedCliPath(env);
  if (isExecutable(cached)) return { kind: 'executable', path: cached, origin: 'cache' };

  const reasons = [
    'TEMPORAL_ADDRESS is not set',
    'no TEMPORAL_CLI_PATH and no `temporal` on PATH',
    `no build at ${cached}`,
  ];
  const go = findOnPath('go', env);
  if (go) {
    try {
      return { kind: 'executable', path: await buildPinnedCli(go, env, log), origin: 'go-build' };
    } catch (error) {
      reasons.push(`the Go build failed: ${(error as Error).message}`);
      log(`temporal-coordination: ${reasons.at(-1)}`);
    }
  } else {
    reasons.push('no `go` on PATH');
  }
  if (options.download ?? true) return { kind: 'download', reasons };
  throw new DevServerUnavailableError([...reasons, 'the SDK download is turned off']);
}
