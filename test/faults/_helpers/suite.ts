// What the in-process fault cases share: a worker and client on the test server (`env`), the fence, and the child
// processes to kill when the file is done.
import test from 'ava';
import { startTestEnv, type TestEnv } from '../../_helpers/temporal.js';
import { killAll, type Child } from './children.js';
import { Fence, setupFence } from './fence.js';

export interface FaultSuite {
  readonly env: TestEnv;
  readonly fence: Fence;
  readonly children: Child[];
}

/** Registers the file's before and after hooks; the suite's fields are set once the before hook ran. */
export function faultSuite(name: string): FaultSuite {
  const suite = { children: [] as Child[] } as { env: TestEnv; fence: Fence; children: Child[] };
  test.before(async () => {
    await setupFence();
    suite.fence = Fence.open();
    suite.env = await startTestEnv(name);
  });
  test.after.always(async () => {
    await killAll(suite.children);
    await suite.fence?.close();
    await suite.env?.teardown();
  });
  return suite;
}
