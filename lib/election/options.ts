import type { Duration } from '@temporalio/common';

export interface CampaignOptions {
  /**
   * What this candidate is known by while it leads: observers and `leader` see it.
   * @default `${os.hostname()}:${process.pid}`
   */
  readonly value?: string;
  /**
   * How long leadership lasts without renewal; it renews about every `ttl / 3`. A leader that dies is followed by the
   * next candidate at most `ttl` after its last renewal.
   * @default '30s'
   */
  readonly ttl?: Duration;
  /**
   * How long to wait for leadership before giving up with a `LockTimeoutError`; the candidacy is withdrawn.
   * @default undefined (wait as long as it takes)
   */
  readonly waitTimeout?: Duration;
  /**
   * Stops waiting for leadership, rejecting with `signal.reason`; the candidacy is withdrawn. It does not end a
   * leadership already won: resign for that.
   * @default undefined
   */
  readonly signal?: AbortSignal;
}

export interface ObserveOptions {
  /**
   * Ends the iteration (it returns, it does not throw) when aborted.
   * @default undefined (observe until the loop breaks)
   */
  readonly signal?: AbortSignal;
}
