// The fenced resource the fault suite checks its invariants at: a PostgreSQL row per resource holding the highest
// fencing token it accepted, and a log of every write attempt, accepted or rejected. The fault cases never trust the
// library's own view of who held the lock: they read this log.
//
// The rule, applied by one server-side function call per write (so a writer paused by SIGSTOP mid-call never holds the
// resource's row lock: PostgreSQL finishes and commits the call on its own), with writers serialized on the row:
// - `enter` opens a critical section: accepted only with a token greater than the stored one;
// - any other write (`work`, `exit`) is accepted with a token equal to or greater than the stored one, so a holder can
//   keep writing until a later holder has entered, and never after.
// Notes (`note`) are log rows that write nothing (a holder saying it saw its lease lost); they are never fenced.
//
// The fence's accept/refuse decision cannot show a lock bug: it refuses whatever would overlap. So each attempt also
// records what its writer believed when it decided to write (`checked_at`, `believed`: see `Fence.write`), and the
// checks (`checkLog`) find overlapping critical sections in that raw record, whatever the fence decided.
import pg from 'pg';

export type WriteOp = 'enter' | 'work' | 'exit';

/** What a writer holds, as far as the fence needs: a `Lease` is one. */
export interface Holding {
  readonly token: number;
  readonly expiresAt: Date;
  readonly signal: AbortSignal;
}

export interface LogRow {
  readonly id: number;
  readonly resource: string;
  readonly token: number;
  readonly writer: string;
  readonly op: WriteOp | `note:${string}`;
  readonly accepted: boolean;
  /** The stored token when the write was decided. */
  readonly stored: number | null;
  /** When the row was written, by the database's clock. */
  readonly at: Date;
  /** The writer's `Date.now()` when it decided to write; `null` for notes. */
  readonly checkedAt: number | null;
  /** Whether, at `checkedAt`, the writer's lease was neither aborted nor past its `expiresAt`; `null` for notes. */
  readonly believed: boolean | null;
}

export const DATABASE = process.env['FAULTS_DATABASE'] ?? 'temporal_coordination_faults';

export function connectionConfig(database: string): pg.ClientConfig {
  return {
    host: process.env['PGHOST'] ?? '127.0.0.1',
    port: Number(process.env['PGPORT'] ?? 5432),
    user: process.env['PGUSER'] ?? 'postgres',
    password: process.env['PGPASSWORD'] ?? '',
    database,
  };
}

/**
 * Creates the faults database if needed, then runs `ddl` in it under the advisory lock `lockKey`: safe to call from
 * concurrent processes.
 */
export async function createSchema(lockKey: number, ddl: string): Promise<void> {
  const admin = new pg.Client(connectionConfig('postgres'));
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${DATABASE}`);
  } catch (error) {
    // 42P04 duplicate_database; 23505 when two processes race the catalog insert.
    if (!['42P04', '23505'].includes((error as { code?: string }).code ?? '')) throw error;
  } finally {
    await admin.end();
  }
  const client = new pg.Client(connectionConfig(DATABASE));
  await client.connect();
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock($1)', [lockKey]);
    await client.query(ddl);
    await client.query('COMMIT');
  } finally {
    await client.end();
  }
}

/** Creates the fence's tables and its write function once; adds the columns a database made before them lacks. */
export function setupFence(): Promise<void> {
  return createSchema(
    7007,
    `
      CREATE TABLE IF NOT EXISTS fence_state (resource text PRIMARY KEY, token bigint NOT NULL);
      CREATE TABLE IF NOT EXISTS fence_log (
        id bigserial PRIMARY KEY,
        resource text NOT NULL,
        token bigint NOT NULL,
        writer text NOT NULL,
        op text NOT NULL,
        accepted boolean NOT NULL,
        stored bigint,
        at timestamptz NOT NULL DEFAULT clock_timestamp()
      );
      ALTER TABLE fence_log ADD COLUMN IF NOT EXISTS checked_at timestamptz;
      ALTER TABLE fence_log ADD COLUMN IF NOT EXISTS believed boolean;
      CREATE INDEX IF NOT EXISTS fence_log_resource ON fence_log (resource, id);
      CREATE OR REPLACE FUNCTION fence_write(r text, t bigint, w text, o text, checked timestamptz, b boolean)
      RETURNS boolean AS $$
      DECLARE
        stored_token bigint;
        ok boolean;
      BEGIN
        INSERT INTO fence_state VALUES (r, 0) ON CONFLICT DO NOTHING;
        SELECT token INTO stored_token FROM fence_state WHERE resource = r FOR UPDATE;
        ok := CASE WHEN o = 'enter' THEN t > stored_token ELSE t >= stored_token END;
        IF ok THEN
          UPDATE fence_state SET token = t WHERE resource = r;
        END IF;
        INSERT INTO fence_log (resource, token, writer, op, accepted, stored, checked_at, believed)
          VALUES (r, t, w, o, ok, stored_token, checked, b);
        RETURN ok;
      END;
      $$ LANGUAGE plpgsql;`,
  );
}

export class Fence {
  private constructor(private readonly pool: pg.Pool) {}

  static open(): Fence {
    return new Fence(new pg.Pool({ ...connectionConfig(DATABASE), max: 8 }));
  }

  /** Opens a connection now, so the first write is not slowed by it. */
  async warm(): Promise<void> {
    await this.pool.query('SELECT 1');
  }

  /**
   * Writes to `resource` with `holding`'s token; returns whether the fence accepted it. Every attempt is logged, with
   * what the writer believed at the call (it calls as soon as it decided to write): whether its lease was still valid
   * by its own view (`signal` not aborted, `expiresAt`, conservative by this process's clock, not passed), and when.
   * The time is taken here, not by the database: a writer paused by SIGSTOP between its check and its write reaches
   * the database late, but it decided while it held the lease.
   */
  async write(resource: string, holding: Holding, writer: string, op: WriteOp): Promise<boolean> {
    const checkedAt = Date.now();
    const believed = !holding.signal.aborted && checkedAt < holding.expiresAt.getTime();
    const { rows } = await this.pool.query<{ accepted: boolean }>(
      'SELECT fence_write($1, $2, $3, $4, $5, $6) AS accepted',
      [resource, holding.token, writer, op, new Date(checkedAt), believed],
    );
    return rows[0]!.accepted;
  }

  /** Logs what a writer observed, without writing to the resource. */
  async note(resource: string, token: number, writer: string, what: string): Promise<void> {
    await this.pool.query(
      'INSERT INTO fence_log (resource, token, writer, op, accepted, stored) VALUES ($1, $2, $3, $4, false, NULL)',
      [resource, token, writer, `note:${what}`],
    );
  }

  async log(resource: string): Promise<LogRow[]> {
    const { rows } = await this.pool.query<Record<string, unknown>>(
      'SELECT * FROM fence_log WHERE resource = $1 ORDER BY id',
      [resource],
    );
    return rows.map((row) => ({
      id: Number(row['id']),
      resource: String(row['resource']),
      token: Number(row['token']),
      writer: String(row['writer']),
      op: row['op'] as LogRow['op'],
      accepted: Boolean(row['accepted']),
      stored: row['stored'] === null ? null : Number(row['stored']),
      at: row['at'] as Date,
      checkedAt: row['checked_at'] === null ? null : (row['checked_at'] as Date).getTime(),
      believed: row['believed'] === null ? null : Boolean(row['believed']),
    }));
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}

/** A critical section as its writer saw it: from its first to its last write attempt made while it believed it held. */
export interface Section {
  readonly token: number;
  readonly writer: string;
  /** `checkedAt` of its first and last believed write attempts (ms since the epoch, the writers' clock). */
  readonly from: number;
  readonly to: number;
}

export interface Overlap {
  /** `at once`: both writers believed they held at one moment; `out of grant order`: the smaller token came later. */
  readonly kind: 'at once' | 'out of grant order';
  readonly earlier: Section;
  readonly later: Section;
}

export interface Verdict {
  /** Critical sections (tokens) with an accepted `enter`. */
  readonly sections: number;
  /** Accepted writes in all. */
  readonly accepted: number;
  /**
   * Rejected writes: each is a holder writing after a later holder entered, which the fence stopped. Expected only of
   * a holder paused or killed mid-section: its write was decided while it believed it held (and a later holder came
   * in meanwhile only if that belief was wrong: see `overlaps`), or made without that belief.
   */
  readonly rejected: readonly LogRow[];
  /**
   * Pairs of sections that overlap in the raw record, accepted or not: the writers of two tokens each believed they
   * held the lease at one moment, or a smaller token's section began after a greater token's (grants out of order).
   * Each writer's belief is its lease's own view, which the library promises is conservative: always empty.
   */
  readonly overlaps: readonly Overlap[];
  /** Write attempts made while their writer did not believe it held the lease (lease aborted or past `expiresAt`). */
  readonly unbelieved: readonly LogRow[];
  /**
   * Sections entered while the previous one was still open (no `exit` yet): the lock let two holders in at once. The
   * earlier one's later writes, if any, are in `rejected`.
   */
  readonly openedOverOpen: readonly { readonly open: number; readonly entered: number }[];
  /** Sections that never wrote `exit` (their holder died or lost the lease and stopped). */
  readonly unfinished: readonly number[];
}

/** The believed sections of `writes` (each token's believed attempts), sorted by when they began. */
export function believedSections(writes: readonly LogRow[]): Section[] {
  const byToken = new Map<number, { writer: string; from: number; to: number }>();
  for (const row of writes) {
    if (row.believed !== true || row.checkedAt === null) continue;
    const section = byToken.get(row.token);
    if (!section) byToken.set(row.token, { writer: row.writer, from: row.checkedAt, to: row.checkedAt });
    else {
      section.from = Math.min(section.from, row.checkedAt);
      section.to = Math.max(section.to, row.checkedAt);
    }
  }
  return [...byToken.entries()]
    .map(([token, section]) => ({ token, ...section }))
    .sort((a, b) => a.from - b.from || a.token - b.token);
}

/**
 * The overlaps among `sections` (sorted by `from`): each section against the one that reaches furthest among those
 * that began before it (closed intervals: two checks in one millisecond by two holders count as at once, which a
 * hand-over through the workflow never is), and against the greatest token among them (grant order).
 */
export function findOverlaps(sections: readonly Section[]): Overlap[] {
  const overlaps: Overlap[] = [];
  let furthest: Section | undefined;
  let greatest: Section | undefined;
  for (const section of sections) {
    if (furthest && section.from <= furthest.to) overlaps.push({ kind: 'at once', earlier: furthest, later: section });
    if (greatest && section.token < greatest.token) {
      overlaps.push({ kind: 'out of grant order', earlier: greatest, later: section });
    }
    if (!furthest || section.to > furthest.to) furthest = section;
    if (!greatest || section.token > greatest.token) greatest = section;
  }
  return overlaps;
}

/** Checks the log of one resource. */
export function checkLog(rows: readonly LogRow[]): Verdict {
  const writes = rows.filter((row) => !row.op.startsWith('note:'));
  const accepted = writes.filter((row) => row.accepted);
  const openedOverOpen: { open: number; entered: number }[] = [];
  const entered = new Set<number>();
  const exited = new Set<number>();
  let open: number | undefined;
  for (const row of accepted) {
    if (row.op === 'enter') {
      if (open !== undefined) openedOverOpen.push({ open, entered: row.token });
      entered.add(row.token);
      open = row.token;
    } else if (row.op === 'exit') {
      exited.add(row.token);
      if (open === row.token) open = undefined;
    }
  }
  return {
    sections: entered.size,
    accepted: accepted.length,
    rejected: writes.filter((row) => !row.accepted),
    overlaps: findOverlaps(believedSections(writes)),
    unbelieved: writes.filter((row) => row.believed !== true),
    openedOverOpen,
    unfinished: [...entered].filter((token) => !exited.has(token)),
  };
}
