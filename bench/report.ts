/**
 * What a bench run produces: the machine description, the table on stdout and the JSON under `bench/results/`.
 * @module
 */
import { readFile, mkdir, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import type { Comparable, Cost, Row } from './scenario.js';
import { summarize, type Summary } from './stats.js';

export interface Machine {
  readonly cpuModel: string;
  readonly cores: number;
  readonly memoryBytes: number;
  readonly platform: string;
  readonly kernel: string;
  readonly arch: string;
  readonly node: string;
  readonly temporalSdk: string;
  /** 1, 5 and 15 minute load averages when the run started: others' work on the machine shows here. */
  readonly loadAverage: readonly number[];
}

export async function describeMachine(): Promise<Machine> {
  return {
    cpuModel: await cpuModel(),
    cores: os.availableParallelism(),
    memoryBytes: os.totalmem(),
    platform: os.platform(),
    kernel: os.release(),
    arch: os.arch(),
    node: process.version,
    temporalSdk: sdkVersion(),
    loadAverage: loadAverage(),
  };
}

export function loadAverage(): number[] {
  return os.loadavg().map((load) => Math.round(load * 100) / 100);
}

async function cpuModel(): Promise<string> {
  try {
    const cpuinfo = await readFile('/proc/cpuinfo', 'utf8');
    const match = /^model name\s*:\s*(.+)$/m.exec(cpuinfo);
    if (match?.[1] !== undefined) return match[1].trim();
  } catch {
    // Not Linux: fall back to what Node knows.
  }
  return os.cpus()[0]?.model ?? 'unknown';
}

function sdkVersion(): string {
  try {
    const require = createRequire(import.meta.url);
    return (require('@temporalio/client/package.json') as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** One row of the results: a recorded {@link Row} with its statistics. */
export interface Result extends Summary {
  readonly scenario: string;
  readonly metric: string;
  /** Operations per second over the row's `elapsed`, or `null` when not reported. */
  readonly throughput: number | null;
  readonly note?: string;
  /** Operations completed during the row's `elapsed` (samples count unless the row said otherwise). */
  readonly operations?: number;
  readonly compare?: Comparable;
  readonly cost?: Cost;
  /** The samples in ms, in the order measured (rounded to microseconds). */
  readonly samplesMs: readonly number[];
}

const round = (value: number): number => Math.round(value * 1000) / 1000;

export function toResult(scenario: string, row: Row): Result {
  const operations = row.operations ?? row.samples.length;
  const summary = summarize(row.samples);
  return {
    scenario,
    metric: row.metric,
    ...summary,
    min: round(summary.min),
    max: round(summary.max),
    mean: round(summary.mean),
    stddev: round(summary.stddev),
    p50: round(summary.p50),
    p95: round(summary.p95),
    p99: round(summary.p99),
    throughput: row.elapsed === undefined || row.elapsed <= 0 ? null : round((operations / row.elapsed) * 1000),
    ...(row.note === undefined ? {} : { note: row.note }),
    ...(row.operations === undefined ? {} : { operations: row.operations }),
    ...(row.compare === undefined ? {} : { compare: row.compare }),
    ...(row.cost === undefined ? {} : { cost: row.cost }),
    samplesMs: row.samples.map(round),
  };
}

/** The results as a Markdown table (aligned, so it reads in a terminal and pastes into the README). */
export function formatTable(results: readonly Result[]): string {
  const ms = (value: number): string => (Number.isNaN(value) ? '-' : value.toFixed(2));
  const header = ['scenario', 'metric', 'samples', 'p50 ms', 'p95 ms', 'p99 ms', 'mean ms', 'throughput /s'];
  const rows = results.map((result) => [
    result.scenario,
    result.metric,
    String(result.count),
    ms(result.p50),
    ms(result.p95),
    ms(result.p99),
    ms(result.mean),
    result.throughput === null ? '-' : result.throughput.toFixed(1),
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]?.length ?? 0)));
  const numeric = (column: number): boolean => column >= 2;
  const line = (cells: readonly string[]): string =>
    `| ${cells
      .map((cell, column) => (numeric(column) ? cell.padStart(widths[column] ?? 0) : cell.padEnd(widths[column] ?? 0)))
      .join(' | ')} |`;
  const rule = `|${widths.map((width, column) => (numeric(column) ? `${'-'.repeat(width + 1)}:` : '-'.repeat(width + 2))).join('|')}|`;
  return [line(header), rule, ...rows.map(line)].join('\n');
}

/** Writes `<timestamp>-<scenarios>.json` and `latest.json` into `directory`; returns the first path. */
export async function writeResults(
  directory: string,
  date: Date,
  label: string,
  report: Readonly<Record<string, unknown>>,
): Promise<string> {
  await mkdir(directory, { recursive: true });
  // Arrays of numbers on one line each: the raw samples stay readable.
  const json = `${JSON.stringify(report, null, 2).replace(/\[\s+(-?\d[\d.e+-]*(?:,\s+-?\d[\d.e+-]*)*)\s+\]/g, (_, items: string) => `[${items.split(/,\s+/).join(', ')}]`)}\n`;
  const file = path.join(
    directory,
    `${date
      .toISOString()
      .replaceAll(':', '-')
      .replace(/\.\d+Z$/, 'Z')}-${label}.json`,
  );
  await writeFile(file, json);
  await writeFile(path.join(directory, 'latest.json'), json);
  return file;
}
