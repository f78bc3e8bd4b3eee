import { Client as TemporalClient, WorkflowClient, type Client } from '@temporalio/client';
import { DEFAULT_ID_PREFIX, DEFAULT_TASK_QUEUE } from './ids.js';
import { optionalString } from './options.js';
import { Telemetry, type TelemetryOptions } from './telemetry.js';

export { DEFAULT_ID_PREFIX, DEFAULT_TASK_QUEUE };

export interface CoordinatorOptions {
  /** The Temporal client to send requests with. */
  readonly client: Client;
  /**
   * Namespace of the coordination workflows.
   * @default the client's namespace
   */
  readonly namespace?: string;
  /**
   * Task queue the coordination workflows (and queue jobs) run on; workers must poll the same one.
   * @default 'temporal-coordination'
   */
  readonly taskQueue?: string;
  /**
   * Prefix of every workflow ID this coordinator derives from resource IDs and queue keys.
   * @default 'temporal-coordination/'
   */
  readonly idPrefix?: string;
  /**
   * OpenTelemetry metrics and spans, through the global API of `@opentelemetry/api` if it is installed (register the
   * SDK before creating the coordinator); see docs/observability.md.
   * @default { group: the part of the ID before its first `:`, resourceIds: false }
   */
  readonly telemetry?: TelemetryOptions;
}

/** What every client-side operation needs: resolved once per coordinator. */
export interface Context {
  readonly client: Client;
  readonly taskQueue: string;
  readonly idPrefix: string;
  /** Queries running workflows only (`queryRejectCondition: 'NOT_OPEN'`): a closed run's last state would mislead. */
  readonly openRuns: WorkflowClient;
  readonly telemetry: Telemetry;
}

export function createContext(options: CoordinatorOptions): Context {
  if (typeof options !== 'object' || options === null || typeof options.client?.workflow !== 'object') {
    throw new TypeError('Expected `client` to be a Temporal `Client` from @temporalio/client');
  }
  const { namespace, taskQueue = DEFAULT_TASK_QUEUE, idPrefix = DEFAULT_ID_PREFIX } = options;
  for (const [name, value] of Object.entries({ namespace, taskQueue, idPrefix })) optionalString(name, value);
  if (taskQueue === '') throw new TypeError('Expected `taskQueue` to be a non-empty string');
  const telemetry = Telemetry.create(options.telemetry);
  const client =
    namespace === undefined || namespace === options.client.options.namespace
      ? options.client
      : new TemporalClient({ ...options.client.options, connection: options.client.connection, namespace });
  const { options: workflowOptions } = client.workflow;
  const openRuns = new WorkflowClient({
    connection: client.connection,
    namespace: workflowOptions.namespace,
    identity: workflowOptions.identity,
    dataConverter: workflowOptions.loadedDataConverter,
    interceptors: workflowOptions.interceptors,
    queryRejectCondition: 'NOT_OPEN',
  });
  return { client, taskQueue, idPrefix, openRuns, telemetry };
}
