// An observer of one election in a child process: it prints every state `observe` yields, as it comes, as
// `{"leader":value|null,"term":number|null}` (null while nobody leads), the first being the state it started in. A line
// `stop` on stdin ends the observation: then it prints `{"stopped":true}` and exits.
// Usage: node --import tsx observer.ts (TEMPORAL_ADDRESS, TASK_QUEUE, ELECTION).
import { connect, report, requiredEnv } from './client.js';

const election = requiredEnv('ELECTION');

const { coordinator, close } = await connect();
const stop = new AbortController();
process.stdin.setEncoding('utf8').on('data', (chunk: string) => {
  if (chunk.includes('stop')) stop.abort();
});

for await (const { leader, term } of coordinator().observe(election, { signal: stop.signal })) {
  report({ leader: leader ?? null, term: term ?? null });
}
report({ stopped: true });
await close();
process.exit(0);
