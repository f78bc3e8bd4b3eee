// The soak run's worker (see soak.ts), in a process of its own so its memory can be sampled alone. Prints `ready` once
// it polls; stops on SIGTERM. Usage: tsx scripts/soak-worker.ts (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TASK_QUEUE).
import { runChildWorker } from '../test/_helpers/worker-child.js';

await runChildWorker({});
