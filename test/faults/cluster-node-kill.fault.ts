// Case 7: a node of a 2-node Temporal cluster on PostgreSQL (`npm run cluster:start`, built and started by this case if
// needed) is SIGKILLed in the middle of a contention run and of a queue drain, then started again. Clients and the
// worker talk to node 1's frontend; node 2 is killed, so the history shards and task queue partitions it owned move to
// node 1 once the membership notices, and back when it returns. No overlap, no lost waiter, every job done, one at a
// time in order per key, run again only around a kill.
import test from 'ava';
import { kill, NAMESPACE, nodes, start } from '../../scripts/cluster.js';
import { runServerFaults } from './_helpers/server-faults.js';

const quick = process.env['FAULTS_QUICK'] === '1';
const KILLS = quick ? 1 : 3;
const [entry, victim] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];

test(`killing a cluster node ${KILLS} times mid-run: no overlap, no lost waiter, every job done in order`, async (t) => {
  // A fresh machine builds the server first (minutes); later runs reuse it.
  t.timeout(20 * 60_000 + KILLS * 180_000);
  await start();
  // Leave the cluster whole for whoever uses it next.
  t.teardown(start);
  await runServerFaults(t, {
    name: 'cluster-node-kill',
    address: entry.frontend,
    namespace: NAMESPACE,
    rounds: KILLS,
    inject: () => kill(victim.name),
    recover: start,
    roundsLabel: `kills of ${victim.name}`,
    outageNote: 'the node still down',
  });
});
