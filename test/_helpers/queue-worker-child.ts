// A worker in a child process, so a test can SIGKILL it mid-job. Every job attempt logs `start <id> <attempt>` and
// `end <id>` to QUEUE_LOG. Usage: node --import tsx queue-worker-child.ts (TEMPORAL_ADDRESS, TASK_QUEUE, QUEUE_LOG).
import { appendFileSync } from 'node:fs';
import { Context } from '@temporalio/activity';
import { runChildWorker } from './worker-child.js';

const log = process.env['QUEUE_LOG'];
if (!log) throw new Error('QUEUE_LOG is required');

await runChildWorker({
  async step(id: string, ms: number) {
    appendFileSync(log, `start ${id} ${Context.current().info.attempt}\n`);
    await new Promise((resolve) => setTimeout(resolve, ms));
    appendFileSync(log, `end ${id}\n`);
    return id;
  },
});
