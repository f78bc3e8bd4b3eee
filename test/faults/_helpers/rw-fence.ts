// The fenced resource for read-write locks: fence.ts's rule (`enter` only with a token greater than the stored one)
// refuses overlapping readers by design, so a read-write lock's holders write here instead. A PostgreSQL row per
// resource holds the greatest token that entered in either mode and the token of the latest writer that entered, and a
// log keeps every write attempt, accepted or refused, with the database's clock.
//
// The rule, applied by one server-side function call per write, with writers serialized on the resource's row: a write
// is refused when a holder it may not share the resource with has entered with a greater token. So:
// - a writer's `enter` is accepted only with a token greater than every token that entered so far, readers' included;
//   its `exit` with a token equal to or greater than all of them (nobody entered after it);
// - a reader's `enter` and `exit` are accepted only with a token greater than the latest writer's: readers share the
//   resource with each other in any order, never with a writer granted after them.
// A lock that lets a later holder in beside an earlier one, or grants out of token order, shows as a refused write as
// soon as the earlier one writes again.
//
// The fence's decision cannot show every lock bug (an earlier holder may not write again), so the checks (`checkRwLog`)
// also rebuild each critical section from the raw record, by the database's clock (`at`, taken under the row lock: the
// order the writes were serialized in), and find any writer's section that overlaps another section. Each attempt also
// records what its writer believed when it decided to write (`believed`, as `Fence.write` records it).
import pg from 'pg';
import { connectionConfig, createSchema, DATABASE, type Holding } from './fence.js';

export type RwMode = 'read' | 'write';

export interface RwLogRow {
  readonly id: number;
  readonly token: number;
  readonly writer: string;
  readonly mode: RwMode;
  readonly op: 'enter' | 'exit';
  readonly accepted: boolean;
  /** When the row was written, by the database's clock, in microseconds since the epoch. */
  readonly at: number;
  /** Whether, when it decided to write, the writer's lease was neither aborted nor past its `expiresAt`. */
  readonly believed: boolean;
}

/** Creates the read-write fence's tables and its write function once. */
export function setupRwFence(): Promise<void> {
  return createSchema(
    7009,
    `
      CREATE TABLE IF NOT EXISTS rw_fence_state (
        resource text PRIMARY KEY,
        greatest bigint NOT NULL,
        writer bigint NOT NULL
      );
      CREATE TABLE IF NOT EXISTS rw_fence_log (
        id bigserial PRIMARY KEY,
        resource text NOT NULL,
        token bigint NOT NULL,
        writer text NOT NULL,
        mode text NOT NULL,
        op text NOT NULL,
        accepted boolean NOT NULL,
        greatest bigint NOT NULL,
        last_writer bigint NOT NULL,
        at timestamptz NOT NULL DEFAULT clock_timestamp(),
        checked_at timestamptz NOT NULL,
        believed boolean NOT NULL
      );
      CREATE INDEX IF NOT EXISTS rw_fence_log_resource ON rw_fence_log (resource, id);
      CREATE OR REPLACE FUNCTION rw_fence_write(r text, t bigint, w text, m text, o text, checked timestamptz, b boolean)
      RETURNS boolean AS $$
      DECLARE
        state rw_fence_state%ROWTYPE;
        ok boolean;
      BEGIN
        INSERT INTO rw_fence_state VALUES (r, 0, 0) ON CONFLICT DO NOTHING;
        SELECT * INTO state FROM rw_fence_state WHERE resource = r FOR UPDATE;
        ok := CASE
          WHEN m = 'write' AND o = 'enter' THEN t > state.greatest
          WHEN m = 'write' THEN t >= state.greatest
          ELSE t > state.writer
        END;
        IF ok AND o = 'enter' THEN
          UPDATE rw_fence_state
            SET greatest = GREATEST(greatest, t), writer = CASE WHEN m = 'write' THEN t ELSE writer END
            WHERE resource = r;
        END IF;
        INSERT INTO rw_fence_log (resource, token, writer, mode, op, accepted, greatest, last_writer, checked_at, believed)
          VALUES (r, t, w, m, o, ok, state.greatest, state.writer, checked, b);
        RETURN ok;
      END;
      $$ LANGUAGE plpgsql;`,
  );
}

export class RwFence {
  private constructor(private readonly pool: pg.Pool) {}

  static open(): RwFence {
    return new RwFence(new pg.Pool({ ...connectionConfig(DATABASE), max: 2 }));
  }

  /** Opens a connection now, so the first write is not slowed by it. */
  async warm(): Promise<void> {
    await this.pool.query('SELECT 1');
  }

  /**
   * Writes `op` to `resource` as a holder in `mode` with `holding`'s token; returns whether the fence accepted it. The
   * attempt is logged with whether the writer believed its lease valid as it called (see `Fence.write`).
   */
  async write(resource: string, holding: Holding, writer: string, mode: RwMode, op: 'enter' | 'exit') {
    const checkedAt = Date.now();
    const believed = !holding.signal.aborted && checkedAt < holding.expiresAt.getTime();
    const { rows } = await this.pool.query<{ accepted: boolean }>(
      'SELECT rw_fence_write($1, $2, $3, $4, $5, $6, $7) AS accepted',
      [resource, holding.token, writer, mode, op, new Date(checkedAt), believed],
    );
    return rows[0]!.accepted;
  }

  /** Every write attempt to `resource`, in the order the fence decided them. */
  async log(resource: string): Promise<RwLogRow[]> {
    const { rows } = await this.pool.query<Record<string, unknown>>(
      `SELECT id, token, writer, mode, op, accepted, believed,
         (extract(epoch FROM at) * 1000000)::bigint AS at_us
       FROM rw_fence_log WHERE resource = $1 ORDER BY id`,
      [resource],
    );
    return rows.map((row) => ({
      id: Number(row['id']),
      token: Number(row['token']),
      writer: String(row['writer']),
      mode: row['mode'] as RwMode,
      op: row['op'] as RwLogRow['op'],
      accepted: Boolean(row['accepted']),
      at: Number(row['at_us']),
      believed: Boolean(row['believed']),
    }));
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}

/** A critical section in the raw record: from the first to the last write of its token, by the database's clock. */
export interface RwSection {
  readonly token: number;
  readonly writer: string;
  readonly mode: RwMode;
  readonly from: number;
  readonly to: number;
  /** Whether it wrote both `enter` and `exit`. */
  readonly complete: boolean;
}

export interface RwVerdict {
  readonly sections: readonly RwSection[];
  /** Writes the fence refused: a holder beside, or granted out of order with, one it may not share the resource with. */
  readonly refused: readonly RwLogRow[];
  /** Writes made while their writer did not believe it held the lease (aborted, or past `expiresAt`). */
  readonly unbelieved: readonly RwLogRow[];
  /** Sections without both an `enter` and an `exit`. */
  readonly unfinished: readonly RwSection[];
  /** Writers' sections that overlap another section, of either mode (each pair once): always empty. */
  readonly writerOverlaps: readonly { readonly writer: RwSection; readonly other: RwSection }[];
  /** The most readers' sections open at one moment. */
  readonly mostReaders: number;
}

/** The sections of `rows`, one per token, sorted by when they began. */
export function rwSections(rows: readonly RwLogRow[]): RwSection[] {
  const byToken = new Map<number, RwLogRow[]>();
  for (const row of rows) {
    const writes = byToken.get(row.token);
    if (writes) writes.push(row);
    else byToken.set(row.token, [row]);
  }
  return [...byToken.entries()]
    .map(([token, writes]) => ({
      token,
      writer: writes[0]!.writer,
      mode: writes[0]!.mode,
      from: Math.min(...writes.map((row) => row.at)),
      to: Math.max(...writes.map((row) => row.at)),
      complete: writes.some((row) => row.op === 'enter') && writes.some((row) => row.op === 'exit'),
    }))
    .sort((a, b) => a.from - b.from || a.token - b.token);
}

/** The most of `sections` open at one moment (closed intervals: touching counts as at once). */
export function mostAtOnce(sections: readonly RwSection[]): number {
  const edges = sections.flatMap(({ from, to }) => [
    { at: from, step: 1 },
    { at: to, step: -1 },
  ]);
  edges.sort((a, b) => a.at - b.at || b.step - a.step);
  let open = 0;
  let most = 0;
  for (const { step } of edges) most = Math.max(most, (open += step));
  return most;
}

/** Checks the log of one resource. */
export function checkRwLog(rows: readonly RwLogRow[]): RwVerdict {
  const sections = rwSections(rows);
  const writerOverlaps = sections
    .filter((writer) => writer.mode === 'write')
    .flatMap((writer) =>
      sections
        // Two writers' sections that overlap are one pair, found from the greater token.
        .filter((other) => other.mode === 'read' || other.token < writer.token)
        .filter((other) => other.from <= writer.to && other.to >= writer.from)
        .map((other) => ({ writer, other })),
    );
  return {
    sections,
    refused: rows.filter((row) => !row.accepted),
    unbelieved: rows.filter((row) => !row.believed),
    unfinished: sections.filter((section) => !section.complete),
    writerOverlaps,
    mostReaders: mostAtOnce(sections.filter((section) => section.mode === 'read')),
  };
}
