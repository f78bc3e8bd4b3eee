// One election candidate in a child process, told what to do on stdin. It prints `ready` once connected; a line
// `campaign` makes it campaign with VALUE and TTL: it prints `{"sent":value}` once its campaign has reached the
// server (so a candidate told to campaign after it is queued behind it), then `{"leading":value,"term":...}` once it
// leads, and holds its leadership, renewed, until it is killed or a line `resign` makes it resign: then it prints
// `{"resigned":value,"term":...}` and exits. Should it lose its leadership meanwhile (its `signal` aborted), it
// prints `{"lost":value,"term":...,"reason":...}`.
// Usage: node --import tsx candidate.ts (TEMPORAL_ADDRESS, TASK_QUEUE, ELECTION, VALUE, TTL).
import { Client, Connection, type WorkflowClientInterceptor } from '@temporalio/client';
import { createCoordinator, retryInterceptors } from '../../../lib/index.js';
import { report, requiredEnv } from './client.js';

const election = requiredEnv('ELECTION');
const value = requiredEnv('VALUE');
const ttl = Number(process.env['TTL'] ?? 30_000);

/** Resolves with the first line `line` on stdin. */
const lines = new Map<string, () => void>();
const told = (line: string) => new Promise<void>((resolve) => lines.set(line, resolve));
let buffer = '';
process.stdin.setEncoding('utf8').on('data', (chunk: string) => {
  buffer += chunk;
  for (let newline = buffer.indexOf('\n'); newline >= 0; newline = buffer.indexOf('\n')) {
    lines.get(buffer.slice(0, newline).trim())?.();
    buffer = buffer.slice(newline + 1);
  }
});

// A campaign queues the candidate with a signal-with-start (it creates the election's workflow if need be): once that
// call returns, the server has the candidacy, and a candidacy sent later is queued behind it. Only the first counts;
// a campaign asks again, at the back of the queue, only if its request was lost.
let sent = false;
const reportSent: WorkflowClientInterceptor = {
  async signalWithStart(input, next) {
    const runId = await next(input);
    if (!sent) report({ sent: value });
    sent = true;
    return runId;
  },
};

const connection = await Connection.connect({
  address: requiredEnv('TEMPORAL_ADDRESS'),
  interceptors: retryInterceptors(),
});
const client = new Client({
  connection,
  namespace: process.env['TEMPORAL_NAMESPACE'] ?? 'default',
  interceptors: { workflow: [reportSent] },
});
const { campaign } = createCoordinator({ client, taskQueue: requiredEnv('TASK_QUEUE') });
const [campaignTold, resignTold] = [told('campaign'), told('resign')];
report({ ready: value });

await campaignTold;
const leadership = await campaign(election, { value, ttl });
const { term } = leadership;
let resigning = false;
leadership.signal.addEventListener(
  'abort',
  () => {
    if (!resigning) report({ lost: value, term, reason: String(leadership.signal.reason) });
  },
  { once: true },
);
report({ leading: value, term });

await resignTold;
resigning = true;
await leadership.resign();
report({ resigned: value, term });
await connection.close();
process.exit(0);
