// What the demo and its service processes tell each other: the service's connection settings (in the DEMO_SERVICE
// environment variable), tasks (JSON lines on its stdin) and events (JSON lines on its stdout).
import type { ResourceSpec } from './resource.js';

export interface ServiceConfig {
  readonly resource: ResourceSpec;
  readonly address: string;
  readonly namespace: string;
  readonly taskQueue: string;
}

export interface ServiceTask {
  readonly kind: 'unlocked-counter' | 'locked-counter' | 'stale-holder' | 'late-holder';
  /** The resource cell to update. */
  readonly key: string;
  /** The lock that protects it. */
  readonly lockId: string;
  /** Counters: how many increments. Holders: what to add to the cell. */
  readonly amount: number;
  /** How long a counter works between its read and its write, in ms. */
  readonly workTime: number;
}

export type ServiceEvent =
  | { readonly type: 'ready' }
  | { readonly type: 'increment'; readonly from: number }
  | { readonly type: 'granted'; readonly token: number; readonly value: number }
  | { readonly type: 'frozen'; readonly ms: number }
  | { readonly type: 'woke'; readonly leaseAborted: boolean }
  | { readonly type: 'wrote'; readonly value: number; readonly token: number; readonly applied: boolean }
  | { readonly type: 'lease-lost'; readonly message: string }
  /** The task is finished. */
  | { readonly type: 'done' }
  | { readonly type: 'error'; readonly message: string };

/** How long the stale holder's lease lasts, and how long it freezes. */
export const STALE_TTL = 2_000;
export const FREEZE = 4_000;
