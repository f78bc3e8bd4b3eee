/**
 * The benchmark harness: `npm run bench [-- <scenario>...] [--quick] [--samples N] [--warmup N] [--list]`.
 *
 * Every file under `bench/scenarios/` default-exports a {@link Scenario} named like the file. All selected scenarios
 * run in one process against one Temporal dev server (or the one `TEMPORAL_ADDRESS` names), one after the other, so
 * baselines and library numbers taken in the same run can be compared on a noisy machine. The table goes to stdout,
 * progress to stderr, and the JSON to `bench/results/<timestamp>-<scenarios>.json` and `bench/results/latest.json`.
 * @module
 */
import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { copyFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Connection } from '@temporalio/client';
import { Runtime } from '@temporalio/worker';
import { startDevServer, type DevServer } from '../lib/testing/index.js';
import { fileLogger, makeLogDirectory } from '../scripts/logs.js';
import { writeChart } from './chart.js';
import { formatComparisons, ratios, targets } from './compare.js';
import { formatOtelCosts, otelCosts, withOtel } from './otel.js';
import { ProgressLine } from './progress.js';
import { describeMachine, formatTable, loadAverage, toResult, writeResults, type Result } from './report.js';
import { ScenarioSkipped, type Scenario, type ScenarioContext } from './scenario.js';

const benchDirectory = path.dirname(fileURLToPath(import.meta.url));
const usage = `Usage: npm run bench [-- <scenario>...] [--quick] [--samples N] [--warmup N] [--contenders N,N...]
                     [--dynamic-config K=V]... [--otel] [--list]

  <scenario>            run only these (default: all)
  --quick               a short smoke run: 30 samples, 5 warm-up (CI)
  --samples N           measured samples per metric (default 500)
  --warmup N            warm-up iterations per metric (default 50)
  --contenders N,N...   lock-contention's contender levels (default 1,8,32,128,1000; 1,8,32 with --quick)
  --dynamic-config K=V  a dynamic config value for the dev server (repeatable), for example
                        history.transferProcessorMaxPollRPS=1000; ignored with TEMPORAL_ADDRESS
  --otel                run each scenario four times: plain, with the OpenTelemetry SDK registered (rows
                        marked [otel], [otel 2]), plain again ([plain 2]): the instrumentation's cost
                        against the noise, measured in the same run
  --list                list the scenarios and exit

The server is the one TEMPORAL_ADDRESS (and TEMPORAL_NAMESPACE) names, else a dev server started for the run.`;

interface ScenarioOutcome {
  readonly name: string;
  readonly description: string;
  readonly taskQueue: string;
  readonly status: 'ok' | 'failed' | 'interrupted' | 'skipped';
  readonly seconds: number;
  readonly error?: string;
}

const scenarioDirectory = path.join(benchDirectory, 'scenarios');
const scenarioFile = /^([^_.][^.]*)\.[cm]?[jt]s$/;

/** Scenario names (file names without extension), in order; files starting with `_` or `.` are helpers. */
async function scenarioNames(): Promise<Map<string, string>> {
  const files = (await readdir(scenarioDirectory)).filter((file) => !file.endsWith('.d.ts')).sort();
  const names = new Map<string, string>();
  for (const file of files) {
    const name = scenarioFile.exec(file)?.[1];
    if (name !== undefined && !names.has(name)) names.set(name, file);
  }
  return names;
}

/** Imports one scenario file (only the selected ones are imported: a broken file elsewhere does not matter). */
async function loadScenario(name: string, file: string): Promise<Scenario> {
  const module = (await import(pathToFileURL(path.join(scenarioDirectory, file)).href)) as { default?: unknown };
  const scenario = module.default as Partial<Scenario> | undefined;
  if (typeof scenario?.run !== 'function' || typeof scenario.description !== 'string') {
    throw new TypeError(`Expected bench/scenarios/${file} to default-export a scenario { name, description, run }`);
  }
  if (scenario.name !== name) {
    throw new TypeError(
      `Expected the scenario in bench/scenarios/${file} to be named \`${name}\`, got \`${scenario.name}\``,
    );
  }
  return scenario as Scenario;
}

function count(value: string | undefined, option: string, fallback: number): number {
  if (value === undefined) return fallback;
  const number = Number(value);
  if (!Number.isSafeInteger(number) || number < 0) {
    throw new TypeError(`Expected \`--${option}\` to be a non-negative integer, got \`${value}\``);
  }
  return number;
}

function dynamicConfig(entries: readonly string[]): Record<string, string | number | boolean> {
  const config: Record<string, string | number | boolean> = {};
  for (const entry of entries) {
    const separator = entry.indexOf('=');
    if (separator <= 0) throw new TypeError(`Expected \`--dynamic-config\` to be key=value, got \`${entry}\``);
    const value = entry.slice(separator + 1);
    config[entry.slice(0, separator)] =
      value === 'true' ? true : value === 'false' ? false : /^-?\d+(\.\d+)?$/.test(value) ? Number(value) : value;
  }
  return config;
}

function commandLine(): string {
  const args = process.argv.slice(2).join(' ');
  if (process.env['npm_lifecycle_event'] === 'bench') return `npm run bench${args === '' ? '' : ` -- ${args}`}`;
  const script = path.relative(process.cwd(), process.argv[1] ?? '');
  return ['node', ...process.execArgv, script, args].filter((part) => part !== '').join(' ');
}

async function serverVersion(server: DevServer): Promise<string> {
  let connection: Connection | undefined;
  try {
    connection = await Connection.connect({ address: server.address });
    const info = await connection.workflowService.getSystemInfo({});
    return info.serverVersion ?? 'unknown';
  } catch {
    return 'unknown';
  } finally {
    await connection?.close();
  }
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      quick: { type: 'boolean', default: false },
      samples: { type: 'string' },
      warmup: { type: 'string' },
      contenders: { type: 'string' },
      'dynamic-config': { type: 'string', multiple: true, default: [] },
      otel: { type: 'boolean', default: false },
      list: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(usage);
    return 0;
  }
  const names = await scenarioNames();
  const unknown = positionals.filter((name) => !names.has(name));
  if (unknown.length > 0) {
    console.error(`Unknown scenario: ${unknown.join(', ')}. Available: ${[...names.keys()].join(', ')}`);
    return 2;
  }
  const wanted = values.list || positionals.length === 0 ? [...names.keys()] : [...new Set(positionals)];
  const selected: Scenario[] = [];
  for (const name of wanted) {
    const scenario = await loadScenario(name, names.get(name) ?? name);
    selected.push(...(values.otel && !values.list ? withOtel(scenario) : [scenario]));
  }
  if (values.list) {
    const width = Math.max(...selected.map((scenario) => scenario.name.length));
    for (const scenario of selected) console.log(`${scenario.name.padEnd(width)}  ${scenario.description}`);
    return 0;
  }
  const quick = values.quick;
  const samples = count(values.samples, 'samples', quick ? 30 : 500);
  const warmup = count(values.warmup, 'warmup', quick ? 5 : 50);
  const contenders = values.contenders?.split(',').map((level) => {
    const number = count(level, 'contenders', 0);
    if (number === 0) throw new RangeError('Expected `--contenders` to be positive integers, got 0');
    return number;
  });
  const serverConfig = dynamicConfig(values['dynamic-config']);
  const external = process.env['TEMPORAL_ADDRESS'] !== undefined;
  if (external && Object.keys(serverConfig).length > 0) {
    console.error('--dynamic-config is ignored: the server is the one TEMPORAL_ADDRESS names');
  }

  const progress = new ProgressLine();
  // The SDK's gRPC retry timer throws this (uncaught) when it fires after its connection was closed: a scenario that
  // failed while RPCs were being retried. Not worth losing the other scenarios' results for.
  process.on('uncaughtException', (error) => {
    if (error instanceof Error && error.message === 'Channel has been shut down') {
      progress.log(`ignored a late gRPC retry on a closed connection: ${error.message}`);
      return;
    }
    progress.clear();
    console.error(error);
    process.exit(70);
  });
  const interrupt = new AbortController();
  // Every RPC bound to it (see cancelOnInterrupt) adds a listener: no leak warning for that.
  setMaxListeners(0, interrupt.signal);
  process.on('SIGINT', () => {
    if (interrupt.signal.aborted) process.exit(130);
    progress.log('Interrupted: cleaning up (Ctrl-C again to quit at once)');
    interrupt.abort(new Error('Interrupted'));
  });

  // Before anything touches the Runtime: Temporal's logs (native ones too) go to a file, as the dev server's do, so the
  // output is the bench's own; and Ctrl-C is ours (the Runtime would shut the workers down behind the scenarios' backs).
  const logDir = makeLogDirectory('bench');
  progress.log(`Logs of the dev server and the workers: ${logDir}`);
  Runtime.install({
    logger: fileLogger(path.join(logDir, 'worker.log')),
    telemetryOptions: { logging: { filter: { core: 'WARN', other: 'ERROR' }, forward: {} } },
    shutdownSignals: [],
  });
  const date = new Date();
  const machine = await describeMachine();
  progress.update('starting the Temporal dev server');
  const server = await startDevServer({ dynamicConfig: serverConfig, logFile: path.join(logDir, 'dev-server.log') });
  const results: Result[] = [];
  const outcomes: ScenarioOutcome[] = [];
  const version = await serverVersion(server);
  try {
    for (const scenario of selected) {
      const taskQueue = `bench-${scenario.name}-${randomUUID().slice(0, 8)}`;
      if (interrupt.signal.aborted) {
        outcomes.push({ ...describe(scenario), taskQueue, status: 'skipped', seconds: 0 });
        continue;
      }
      const reporter = progress.for(scenario.name);
      const ctx: ScenarioContext = {
        address: server.address,
        namespace: server.namespace,
        taskQueue,
        quick,
        samples,
        warmup,
        ...(contenders ? { contenders } : {}),
        signal: interrupt.signal,
        progress: reporter,
        record: (row) => results.push(toResult(scenario.name, row)),
      };
      const start = performance.now();
      try {
        reporter.update('starting');
        await scenario.run(ctx);
        const seconds = (performance.now() - start) / 1000;
        outcomes.push({ ...describe(scenario), taskQueue, status: 'ok', seconds: round(seconds) });
        reporter.log(`done in ${seconds.toFixed(1)} s`);
      } catch (error) {
        const seconds = (performance.now() - start) / 1000;
        if (error instanceof ScenarioSkipped && !interrupt.signal.aborted) {
          outcomes.push({
            ...describe(scenario),
            taskQueue,
            status: 'skipped',
            seconds: round(seconds),
            error: error.message,
          });
          reporter.log(`skipped: ${error.message}`);
          continue;
        }
        const status = interrupt.signal.aborted ? 'interrupted' : 'failed';
        outcomes.push({ ...describe(scenario), taskQueue, status, seconds: round(seconds), error: String(error) });
        reporter.log(
          status === 'interrupted'
            ? 'interrupted'
            : `failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
        );
      }
    }
  } finally {
    progress.update('stopping the Temporal dev server');
    await server.stop();
    progress.clear();
  }
  const loadAverageAtEnd = loadAverage();

  console.log(
    `${machine.cpuModel}, ${machine.cores} cores, ${(machine.memoryBytes / 2 ** 30).toFixed(1)} GiB, ` +
      `Node ${machine.node}, Temporal server ${version}, SDK ${machine.temporalSdk}${quick ? ', --quick' : ''}` +
      Object.entries(external ? {} : serverConfig)
        .map(([key, value]) => `, ${key}=${String(value)}`)
        .join('') +
      '\n',
  );
  console.log(formatTable(results));
  const comparisons = formatComparisons(results);
  if (comparisons !== '') console.log(`\n${comparisons}`);
  const otel = otelCosts(results);
  if (otel.length > 0) {
    console.log(
      '\nThe cost of OpenTelemetry: each scenario ran plain, instrumented, instrumented, plain. OTel - plain: the ' +
        "means of each side's two runs; noise: the larger spread between one side's two runs (for p50, or the " +
        "largest run's 95% confidence half-width of its p50 if larger). CPU: the bench process (clients and " +
        'worker).\n\n' +
        formatOtelCosts(otel),
    );
  }
  for (const outcome of outcomes) {
    if (outcome.status !== 'ok')
      console.log(`\n${outcome.name}: ${outcome.status}${outcome.error ? `: ${outcome.error}` : ''}`);
  }
  const label = positionals.length === 0 ? 'all' : selected.map((scenario) => scenario.name).join('+');
  const file = await writeResults(path.join(benchDirectory, 'results'), date, quick ? `${label}-quick` : label, {
    date: date.toISOString(),
    command: commandLine(),
    quick,
    samples,
    warmup,
    machine: { ...machine, loadAverageAtEnd },
    server: {
      address: server.address,
      namespace: server.namespace,
      version,
      external,
      dynamicConfig: external ? {} : serverConfig,
    },
    scenarios: outcomes,
    comparisons: { ratios: ratios(results), targets: targets(results), otel },
    results,
  });
  console.error(`\nResults: ${path.relative(process.cwd(), file)} (and bench/results/latest.json)`);
  const chart = file.replace(/\.json$/, '.html');
  try {
    const title = `temporal-coordination bench, ${date.toISOString()}: ${commandLine()}`;
    await writeChart(chart, title, results);
    await copyFile(chart, path.join(benchDirectory, 'results', 'latest.html'));
    console.error(`Charts: ${path.relative(process.cwd(), chart)} (and bench/results/latest.html)`);
  } catch (error) {
    console.error(`Could not draw the charts: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (interrupt.signal.aborted) return 1;
  // A scenario skipped for a missing server (a baseline) does not fail the run.
  return outcomes.every((outcome) => outcome.status === 'ok' || outcome.status === 'skipped') ? 0 : 1;
}

const round = (seconds: number): number => Math.round(seconds * 1000) / 1000;

function describe(scenario: Scenario): Pick<ScenarioOutcome, 'name' | 'description'> {
  return { name: scenario.name, description: scenario.description };
}

try {
  process.exitCode = await main();
} catch (error) {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 2;
}
