/**
 * Test helpers: a real Temporal dev server for your tests, found, built or downloaded with no manual step.
 *
 * ```ts
 * import { startDevServer } from 'temporal-coordination/testing';
 * const server = await startDevServer({ dynamicConfig: { 'limit.historyCount.suggestContinueAsNew': 60 } });
 * // ... connect to server.address ...
 * await server.stop();
 * ```
 * @module
 */
export { startDevServer, type DevServer, type DevServerOptions } from './dev-server.js';
export {
  resolveDevServer,
  cacheDirectory,
  pinnedCliPath,
  DevServerUnavailableError,
  TEMPORAL_CLI_VERSION,
  type DevServerSource,
  type ResolveDevServerOptions,
} from './resolve-server.js';
