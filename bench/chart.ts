/**
 * The run's charts, drawn with Vega-Lite (compiled to Vega and rendered to SVG here, in Node), written into one HTML
 * file next to the JSON. The SVG is inlined, so the page needs no script and nothing from the network.
 * @module
 */
import { writeFile } from 'node:fs/promises';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { BASELINES, formatComparisons } from './compare.js';
import { formatTable, type Result } from './report.js';

/** Each row's samples are thinned to this many quantiles for the box plots (the JSON keeps them all). */
const MAX_POINTS = 400;

function quantiles(samples: readonly number[]): number[] {
  const sorted = [...samples].sort((a, b) => a - b);
  if (sorted.length <= MAX_POINTS) return sorted;
  return Array.from(
    { length: MAX_POINTS },
    (_, index) => sorted[Math.round((index * (sorted.length - 1)) / (MAX_POINTS - 1))]!,
  );
}

const label = (result: Result): string => `${result.scenario}: ${result.metric}`;

function latencySpec(results: readonly Result[]): TopLevelSpec | undefined {
  const rows = results.filter(
    (result) => (result.scenario === 'floor' || result.compare !== undefined) && result.samplesMs.length > 0,
  );
  if (rows.length === 0) return undefined;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'Latency distribution per scenario (ms, log scale; box: quartiles, whiskers: min-max)',
    width: 640,
    data: {
      values: rows.flatMap((result) =>
        quantiles(result.samplesMs).map((ms) => ({
          row: label(result),
          scenario: result.scenario,
          ms: Math.max(ms, 0.01),
        })),
      ),
    },
    mark: { type: 'boxplot', extent: 'min-max', size: 12 },
    encoding: {
      y: { field: 'row', type: 'nominal', sort: rows.map(label), title: null, axis: { labelLimit: 420 } },
      x: { field: 'ms', type: 'quantitative', scale: { type: 'log' }, title: 'ms' },
      color: { field: 'scenario', type: 'nominal', legend: null },
    },
  };
}

function throughputSpec(results: readonly Result[]): TopLevelSpec | undefined {
  const points = results
    .filter(
      (result) =>
        result.compare?.kind === 'hand-off' &&
        (result.compare.resources ?? 1) === 1 &&
        (result.compare.limit ?? 1) === 1 &&
        result.compare.contenders !== undefined &&
        result.throughput !== null,
    )
    .map((result) => ({
      scenario: result.scenario,
      contenders: result.compare!.contenders!,
      throughput: result.throughput!,
    }));
  if (points.length === 0) return undefined;
  const handOff = results.find((result) => result.scenario === 'floor' && result.metric === 'signal->open-update');
  const backToBack = results.find(
    (result) => result.scenario === 'floor' && result.metric === 'signal->open-update back-to-back',
  );
  const rules = [
    ...(handOff ? [{ rule: '1 / floor signal->open-update p50', throughput: 1000 / handOff.p50 }] : []),
    ...(backToBack?.throughput
      ? [{ rule: 'floor back-to-back signal hand-offs', throughput: backToBack.throughput }]
      : []),
  ];
  // Ours first, then the baselines, in a stable order (and colours).
  const order = ['lock-contention', ...BASELINES];
  const scenarios = [...new Set(points.map((point) => point.scenario))].sort(
    (a, b) => (order.indexOf(a) + 1 || order.length + 1) - (order.indexOf(b) + 1 || order.length + 1),
  );
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'One lock: hand-offs per second against contenders (log scales; dashed: floor)',
    width: 560,
    height: 320,
    layer: [
      {
        data: { values: points },
        mark: { type: 'line', point: true },
        encoding: {
          x: { field: 'contenders', type: 'quantitative', scale: { type: 'log', base: 2 }, title: 'contenders' },
          y: { field: 'throughput', type: 'quantitative', scale: { type: 'log' }, title: 'hand-offs per second' },
          color: { field: 'scenario', type: 'nominal', scale: { domain: scenarios } },
        },
      },
      ...(rules.length === 0
        ? []
        : [
            {
              data: { values: rules },
              mark: { type: 'rule' as const, strokeDash: [4, 4], color: 'gray' },
              encoding: { y: { field: 'throughput', type: 'quantitative' as const } },
            },
            {
              data: { values: rules },
              mark: { type: 'text' as const, align: 'left' as const, dx: 4, dy: -6, color: 'gray', x: 0 },
              encoding: {
                y: { field: 'throughput', type: 'quantitative' as const },
                text: { field: 'rule', type: 'nominal' as const },
              },
            },
          ]),
    ],
  };
}

function aggregateSpec(results: readonly Result[]): TopLevelSpec | undefined {
  const points = results
    .filter(
      (result) =>
        (result.scenario === 'lock-many' || result.compare?.kind === 'job') &&
        result.compare !== undefined &&
        result.throughput !== null,
    )
    .map((result) => ({
      series: result.compare!.kind === 'job' ? 'queue jobs/s' : 'lock hand-offs/s (4 contenders per lock)',
      resources: result.compare!.resources ?? 1,
      throughput: result.throughput!,
    }));
  if (points.length === 0) return undefined;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'Many resources: aggregate throughput against locks / queue keys (log scales)',
    width: 560,
    height: 280,
    data: { values: points },
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'resources', type: 'quantitative', scale: { type: 'log' }, title: 'locks or queue keys' },
      y: { field: 'throughput', type: 'quantitative', scale: { type: 'log' }, title: 'per second' },
      color: { field: 'series', type: 'nominal', legend: { labelLimit: 320 } },
    },
  };
}

async function render(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

const escape = (text: string): string =>
  text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;');

/** Writes the charts, the table and the comparisons of a run as a self-contained HTML page. */
export async function writeChart(file: string, title: string, results: readonly Result[]): Promise<void> {
  const specs = [latencySpec(results), throughputSpec(results), aggregateSpec(results)].filter(
    (spec): spec is TopLevelSpec => spec !== undefined,
  );
  const svgs = await Promise.all(specs.map(render));
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escape(title)}</title>
<style>body { font-family: system-ui, sans-serif; margin: 2em; } pre { font-size: 12px; } figure { margin: 2em 0; }</style>
</head>
<body>
<h1>${escape(title)}</h1>
${svgs.map((svg) => `<figure>${svg}</figure>`).join('\n')}
<h2>Results</h2>
<pre>${escape(formatTable(results))}</pre>
<pre>${escape(formatComparisons(results))}</pre>
</body>
</html>
`;
  await writeFile(file, html);
}
