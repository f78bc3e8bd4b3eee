// Where the dev server's and the SDK's logs go during a test run, a bench or the demo: files in one folder, printed
// once, so a passing run prints its results and little else, and a failing one can still show what the server and the
// workers said.
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { DefaultLogger, type LogEntry, type LogLevel } from '@temporalio/worker';

/** The environment variable that hands the run's log folder to test files and the processes they start. */
export const LOG_DIR_ENV = 'TEMPORAL_COORDINATION_LOG_DIR';

/** A new folder for one run's logs, under the OS temporary folder. */
export function makeLogDirectory(label: string): string {
  return mkdtempSync(join(tmpdir(), `temporal-coordination-${label}-logs-`));
}

/** A Temporal SDK logger (for `Runtime.install` or `bundleWorkflowCode`) that appends its entries to `path`. */
export function fileLogger(path: string, level: LogLevel = 'INFO'): DefaultLogger {
  return new DefaultLogger(level, (entry: LogEntry) => {
    const time = new Date(Number(entry.timestampNanos / 1_000_000n)).toISOString();
    const meta =
      entry.meta && Object.keys(entry.meta).length > 0 ? ` ${inspect(entry.meta, { breakLength: 200 })}` : '';
    // Synchronous, so a process killed on purpose (the fault tests do it) loses nothing it logged.
    appendFileSync(path, `${time} [${entry.level}] ${entry.message}${meta}\n`);
  });
}

/** The last `lines` lines of every non-empty file in `dir`, oldest file first, each under a header naming it. */
export function logTails(dir: string, lines = 30): string {
  const files = readdirSync(dir)
    .map((name) => ({ name, stat: statSync(join(dir, name)) }))
    .filter(({ stat }) => stat.isFile() && stat.size > 0)
    .sort((a, b) => a.stat.mtimeMs - b.stat.mtimeMs);
  return files
    .map(({ name }) => {
      const text = readFileSync(join(dir, name), 'utf8').trimEnd().split('\n');
      const shown = text.slice(-lines);
      const skipped = text.length - shown.length;
      return [`==> ${join(dir, name)}${skipped > 0 ? ` (last ${lines} of ${text.length} lines)` : ''}`, ...shown].join(
        '\n',
      );
    })
    .join('\n\n');
}
