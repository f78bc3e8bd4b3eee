// Case 4: the Temporal server itself is restarted (a dev server persisting to SQLite with --db-filename) in the middle
// of a contention run and of a queue drain. After each restart the lock goes on with no overlap and no lost waiter, and
// every job is done, one at a time in order per key, run again only around a restart.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDevServer, type DevServer } from '../../lib/testing/index.js';
import { freePort } from '../_helpers/net.js';
import { logFile } from '../_helpers/temporal.js';
import { runServerFaults } from './_helpers/server-faults.js';

const quick = process.env['FAULTS_QUICK'] === '1';
const RESTARTS = quick ? 1 : 3;

test(`restarting the server ${RESTARTS} times mid-run: no overlap, no lost waiter, every job done in order`, async (t) => {
  t.timeout(RESTARTS * 180_000);
  const scratch = mkdtempSync(join(tmpdir(), 'faults-server-restart-'));
  // A server of this case's own, not the shared one: TEMPORAL_ADDRESS is ignored so it really starts one.
  const serverOptions = {
    port: await freePort(),
    dbFilename: join(scratch, 'temporal.db'),
    env: { ...process.env, TEMPORAL_ADDRESS: '' },
    logFile: logFile('server-restart-server'),
  };
  let server: DevServer = await startDevServer(serverOptions);
  t.teardown(async () => {
    await server.stop();
    rmSync(scratch, { recursive: true, force: true });
  });
  await runServerFaults(t, {
    name: 'server-restart',
    address: server.address,
    namespace: server.namespace,
    rounds: RESTARTS,
    async inject() {
      await server.stop();
      server = await startDevServer(serverOptions);
    },
    roundsLabel: 'restarts',
    outageNote: 'server stop and start included',
  });
});
