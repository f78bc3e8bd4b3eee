// The test-process side of a contention run: contender processes (contenders.ts) looping withLock on one resource,
// stopped on demand, and the checks every such run must pass at the fenced resource.
import type { ExecutionContext } from 'ava';
import { spawnHelper, type Child } from './children.js';
import type { Verdict } from './fence.js';

export interface ContenderStats {
  readonly grants: number;
  readonly tokens: number[];
  readonly maxWaitMs: number;
  readonly errors: string[];
}

export interface ContentionOptions {
  readonly taskQueue: string;
  readonly resource: string;
  readonly processes: number;
  readonly perProcess: number;
  /** Added to the children's environment (for example another TEMPORAL_ADDRESS). */
  readonly env?: Record<string, string>;
}

/** Starts the contender processes (added to `children`); `stop` ends their loops and returns every contender's stats. */
export function startContention(children: Child[], options: ContentionOptions) {
  const processes = Array.from({ length: options.processes }, (_, i) =>
    spawnHelper('contenders.ts', `contenders ${i}`, {
      ...options.env,
      TASK_QUEUE: options.taskQueue,
      RESOURCE: options.resource,
      NAME: `p${i}`,
      CONTENDERS: options.perProcess,
      SECTION_MS: 30,
    }),
  );
  children.push(...processes);
  return {
    async stop(): Promise<ContenderStats[]> {
      for (const child of processes) child.process.stdin!.write('stop\n');
      const summaries = await Promise.all(
        processes.map((child) => child.waitFor((message) => 'contenders' in message, 180_000, 'its summary')),
      );
      return summaries.flatMap((summary) => summary['contenders'] as ContenderStats[]);
    },
  };
}

/**
 * No overlap in the raw record, no failed acquisition, every contender granted, one token per grant, every grant at the
 * fence.
 */
export function checkContention(
  t: ExecutionContext,
  verdict: Verdict,
  stats: readonly ContenderStats[],
  contenders: number,
): void {
  const tokens = stats.flatMap((contender) => contender.tokens);
  t.deepEqual(verdict.overlaps, [], 'no two holders believed they held at once, and grants came in token order');
  t.deepEqual(verdict.unbelieved, [], 'every write was made while its writer believed it held the lease');
  t.deepEqual(verdict.openedOverOpen, [], 'no section entered while another was open');
  t.deepEqual(verdict.rejected, [], 'no holder wrote after a later holder entered');
  t.deepEqual(verdict.unfinished, [], 'every section finished');
  t.deepEqual(
    stats.flatMap((contender) => contender.errors),
    [],
    'no acquisition failed',
  );
  t.is(stats.length, contenders);
  t.true(
    stats.every((contender) => contender.grants > 0),
    'every contender was granted',
  );
  t.is(new Set(tokens).size, tokens.length, 'every grant had its own token');
  t.is(verdict.sections, tokens.length, 'every grant entered the fenced resource');
}
