// OpenTelemetry metrics and spans, through `@opentelemetry/api` alone: an optional peer dependency. It is loaded here,
// and only here, with `require` in a try: without it (or with it but no SDK registered) every instrument is a no-op.
// No type of the API appears in an exported signature, so the package's declarations never need it either.
import { createRequire } from 'node:module';
import type * as Api from '@opentelemetry/api';

/** Options of the OpenTelemetry instrumentation (see docs/observability.md). */
export interface TelemetryOptions {
  /**
   * The group a resource ID or queue key is counted under, in the `coordination.resource.group` attribute. Keep the
   * number of groups small: every group is a time series of every metric.
   * @default the part of the ID before its first `:` (`invoice:42` -> `invoice`), or the whole ID if it has none
   */
  readonly group?: (id: string) => string;
  /**
   * Also put full resource IDs and queue keys (`coordination.resource.id`) and job IDs (`coordination.job.id`) on
   * metrics and spans. Every ID is then a time series of its own: only for a small, fixed set of resources.
   * @default false
   */
  readonly resourceIds?: boolean;
}

/** Attribute values as OpenTelemetry takes them. */
export type Attributes = Record<string, string | number | boolean>;

/** A histogram (`record`) or a counter (`add`). */
export interface Instrument {
  record(value: number, attributes: Attributes): void;
  add(value: number, attributes: Attributes): void;
}

/** W3C trace context headers (`traceparent`, `tracestate`, ...) as `propagation.inject` writes them. */
export type TraceCarrier = Record<string, string>;

export interface SpanOptions {
  readonly kind?: 'internal' | 'producer' | 'consumer';
  /** Span contexts, as carried with a job, to link the span to. */
  readonly links?: readonly TraceCarrier[];
}

/** One span; every method is a no-op when OpenTelemetry is not there. */
export interface TelemetrySpan {
  setAttributes(attributes: Attributes): void;
  /** Marks the span failed with `error` (recorded as an exception event). */
  fail(error: unknown): void;
  end(): void;
  /** Runs `fn` with this span as the active one, so spans started inside it are its children. */
  within<T>(fn: () => T): T;
  /** The span's context as W3C headers, to carry to another process; `undefined` when not sampled or disabled. */
  carrier(): TraceCarrier | undefined;
}

const noopInstrument: Instrument = { record() {}, add() {} };
const noopSpan: TelemetrySpan = {
  setAttributes() {},
  fail() {},
  end() {},
  within: (fn) => fn(),
  carrier: () => undefined,
};

const requireHere = createRequire(import.meta.url);
const PACKAGE = 'temporal-coordination';

function packageVersion(): string | undefined {
  try {
    // From lib/ (run from source) and dist/ alike, package.json is one folder up.
    return (requireHere('../package.json') as { version?: string }).version;
  } catch {
    return undefined;
  }
}

/** The API, if it can be loaded; `undefined` means no-op instruments. */
function loadApi(load: (id: string) => unknown): typeof Api | undefined {
  try {
    return load('@opentelemetry/api') as typeof Api;
  } catch {
    return undefined;
  }
}

/** Loaded once per process: `require` caches it anyway, but a failed load would be retried on every coordinator. */
let defaultApi: { api: typeof Api | undefined } | undefined;

/** `invoice:42` -> `invoice`. */
export function defaultGroup(id: string): string {
  const colon = id.indexOf(':');
  return colon === -1 ? id : id.slice(0, colon);
}

const spanKinds = { internal: 0, producer: 3, consumer: 4 } as const;

class OtelSpan implements TelemetrySpan {
  constructor(
    private readonly api: typeof Api,
    private readonly span: Api.Span,
  ) {}

  setAttributes(attributes: Attributes): void {
    this.span.setAttributes(attributes);
  }

  fail(error: unknown): void {
    const exception = error instanceof Error ? error : String(error);
    this.span.recordException(exception);
    this.span.setStatus({
      code: this.api.SpanStatusCode.ERROR,
      message: error instanceof Error ? error.message : (exception as string),
    });
  }

  end(): void {
    this.span.end();
  }

  within<T>(fn: () => T): T {
    const { context, trace } = this.api;
    return context.with(trace.setSpan(context.active(), this.span), fn);
  }

  carrier(): TraceCarrier | undefined {
    if (!this.span.isRecording()) return undefined;
    const { context, propagation, trace } = this.api;
    const carrier: TraceCarrier = {};
    propagation.inject(trace.setSpan(context.active(), this.span), carrier);
    // No propagator registered (an SDK set up for metrics and spans alone): W3C `traceparent` is enough for a link.
    if (carrier['traceparent'] === undefined) {
      const { traceId, spanId, traceFlags } = this.span.spanContext();
      carrier['traceparent'] = `00-${traceId}-${spanId}-${traceFlags.toString(16).padStart(2, '0')}`;
    }
    return carrier;
  }
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/**
 * The instrumentation of one coordinator or worker: its options, and the meter and tracer of the global OpenTelemetry
 * API, taken when it is made (so the SDK must be registered before the coordinator or worker is created).
 */
export class Telemetry {
  /** Whether `@opentelemetry/api` was loaded: without it every instrument and span is a no-op. */
  readonly enabled: boolean;
  private readonly meter: Api.Meter | undefined;
  private readonly tracer: Api.Tracer | undefined;
  private readonly groupOf: (id: string) => string;
  private readonly resourceIds: boolean;

  private constructor(
    private readonly api: typeof Api | undefined,
    options: TelemetryOptions,
  ) {
    this.enabled = api !== undefined;
    const version = packageVersion();
    this.meter = api?.metrics.getMeter(PACKAGE, version);
    this.tracer = api?.trace.getTracer(PACKAGE, version);
    this.groupOf = options.group ?? defaultGroup;
    this.resourceIds = options.resourceIds ?? false;
  }

  /**
   * Checks `options` (`TypeError` naming the option) and loads the API with `load` (Node's `require` by default; a
   * test gives one that fails, as an install without the package would).
   */
  static create(options: TelemetryOptions = {}, load?: (id: string) => unknown): Telemetry {
    if (typeof options !== 'object' || options === null) {
      throw new TypeError(`Expected \`telemetry\` to be an object, got \`${String(options)}\` (${typeof options})`);
    }
    if (options.group !== undefined && typeof options.group !== 'function') {
      throw new TypeError(`Expected \`telemetry.group\` to be a function, got ${typeof options.group}`);
    }
    if (options.resourceIds !== undefined && typeof options.resourceIds !== 'boolean') {
      throw new TypeError(`Expected \`telemetry.resourceIds\` to be a boolean, got ${typeof options.resourceIds}`);
    }
    if (load) return new Telemetry(loadApi(load), options);
    defaultApi ??= { api: loadApi(requireHere) };
    return new Telemetry(defaultApi.api, options);
  }

  /** The attributes naming a resource or queue key: its group, and its ID if `resourceIds` is on. */
  resource(id: string): Attributes {
    let group: string;
    try {
      group = String(this.groupOf(id));
    } catch {
      // A failing `group` must not fail the lock or job it describes.
      group = 'unknown';
    }
    return this.resourceIds
      ? { 'coordination.resource.group': group, 'coordination.resource.id': id }
      : { 'coordination.resource.group': group };
  }

  /** `attributes` with the job's ID if `resourceIds` is on. */
  job(jobId: string, attributes: Attributes): Attributes {
    return this.resourceIds ? { ...attributes, 'coordination.job.id': jobId } : attributes;
  }

  histogram(name: string, description: string, unit = 'ms'): Instrument {
    const histogram = this.meter?.createHistogram(name, { description, unit });
    return histogram
      ? { record: (value, attributes) => histogram.record(value, attributes), add() {} }
      : noopInstrument;
  }

  counter(name: string, description: string, unit = '1'): Instrument {
    const counter = this.meter?.createCounter(name, { description, unit });
    return counter ? { record() {}, add: (value, attributes) => counter.add(value, attributes) } : noopInstrument;
  }

  /** A counter that goes up and down: summed over processes, how many there are now. */
  gauge(name: string, description: string, unit = '1'): Instrument {
    const counter = this.meter?.createUpDownCounter(name, { description, unit });
    return counter ? { record() {}, add: (value, attributes) => counter.add(value, attributes) } : noopInstrument;
  }

  /** Starts a span, a child of the active one, linked to the given carried contexts. */
  startSpan(name: string, attributes: Attributes, options: SpanOptions = {}): TelemetrySpan {
    const { api, tracer } = this;
    if (!api || !tracer) return noopSpan;
    const links = (options.links ?? []).flatMap((carrier) => {
      const context = this.extract(carrier);
      return context ? [{ context }] : [];
    });
    const span = tracer.startSpan(name, { kind: spanKinds[options.kind ?? 'internal'], attributes, links });
    return new OtelSpan(api, span);
  }

  /** The span context a carrier holds, through the registered propagator, else read from its `traceparent`. */
  private extract(carrier: TraceCarrier): Api.SpanContext | undefined {
    const { api } = this;
    if (!api || typeof carrier !== 'object' || carrier === null) return undefined;
    const extracted = api.trace.getSpanContext(api.propagation.extract(api.ROOT_CONTEXT, carrier));
    if (extracted && api.isSpanContextValid(extracted)) return extracted;
    const match = TRACEPARENT.exec(String(carrier['traceparent']));
    if (!match) return undefined;
    const spanContext = { traceId: match[1]!, spanId: match[2]!, traceFlags: parseInt(match[3]!, 16), isRemote: true };
    return api.isSpanContextValid(spanContext) ? spanContext : undefined;
  }
}
