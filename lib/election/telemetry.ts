// What elections report to OpenTelemetry (see docs/observability.md). Their lock metrics come from the lock client
// (`coordination.lock.kind` = `election`); these two say what only an election has.
import type { Instrument, Telemetry } from '../telemetry.js';
import type { LeaderState } from './client.js';

export class ElectionTelemetry {
  private readonly changes: Instrument;
  private readonly leaderless: Instrument;

  constructor(private readonly telemetry: Telemetry) {
    this.changes = telemetry.counter(
      'coordination.election.leadership.changes',
      'Leaderships won by this process: summed over processes, how often the leader changed',
    );
    this.leaderless = telemetry.histogram(
      'coordination.election.leaderless.duration',
      'How long elections observed by this process (observe) had no leader, recorded when the next leader came',
    );
  }

  won(electionId: string): void {
    this.changes.add(1, this.telemetry.resource(electionId));
  }

  /**
   * Follows one `observe` iteration: called with every state it yields, records each stretch without a leader when a
   * leader comes (a stretch already under way when the observation starts counts from then).
   */
  observer(electionId: string): (state: LeaderState) => void {
    let leaderlessSince: number | undefined;
    return (state) => {
      if (state.leader === undefined) {
        leaderlessSince ??= performance.now();
      } else if (leaderlessSince !== undefined) {
        this.leaderless.record(performance.now() - leaderlessSince, this.telemetry.resource(electionId));
        leaderlessSince = undefined;
      }
    };
  }
}
