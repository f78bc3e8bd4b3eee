import test from 'ava';
import { createCoordinator } from '../lib/index.js';
import { DEFAULT_ID_PREFIX } from '../lib/context.js';
import { lockIdPrefix } from '../lib/ids.js';
import { startDevServer, type DevServer } from '../lib/testing/index.js';
import { logFile, quietRuntime, startTestEnv, type TestEnv } from './_helpers/temporal.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// A server of this file's own that suggests continue-as-new after 1,000 history events, so a long run of hand-offs
// crosses many runs.
let server: DevServer;
let env: TestEnv;
test.before(async () => {
  quietRuntime('lock-continue-as-new');
  server = await startDevServer({
    env: { ...process.env, TEMPORAL_ADDRESS: '' },
    dynamicConfig: { 'limit.historyCount.suggestContinueAsNew': 1_000 },
    logFile: logFile('lock-continue-as-new-server'),
  });
  env = await startTestEnv('lock-can', { server });
});
test.after.always(async () => {
  await env?.teardown();
  await server?.stop();
});

test('5,000 hand-offs on one lock across continue-as-new keep mutual exclusion and increasing tokens', async (t) => {
  t.timeout(900_000);
  const { withLock } = createCoordinator({ client: env.client, taskQueue: env.taskQueue });
  const id = env.id('can');
  const contenders = 4;
  let inside = 0;
  let overlaps = 0;
  const tokens: number[] = [];
  const started = performance.now();
  await Promise.all(
    Array.from({ length: contenders }, async () => {
      for (let i = 0; i < 5_000 / contenders; i++) {
        await withLock(id, async (lease) => {
          if (++inside > 1) overlaps++;
          tokens.push(lease.token);
          // Held across a timer, so a second holder granted meanwhile would be counted.
          await sleep(1);
          inside--;
        });
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const runs = [];
  for await (const run of env.client.workflow.list({
    query: `WorkflowId = "${lockIdPrefix(DEFAULT_ID_PREFIX)}${id}"`,
  })) {
    runs.push(run.runId);
  }
  t.log(`5,000 hand-offs in ${seconds.toFixed(1)} s across ${runs.length} runs`);
  t.is(overlaps, 0);
  t.is(tokens.length, 5_000);
  t.true(
    tokens.every((token, i) => i === 0 || token > tokens[i - 1]!),
    'tokens strictly increase in grant order',
  );
  t.true(runs.length > 10, `only ${runs.length} runs`);
});
