// The fenced resource the fault suite checks its invariants at: a PostgreSQL row per resource holding the highest
// fencing token it accepted, and a log of every write, accepted or rejected. The fault cases never trust the library's
// own view of who held the lock: they read this log.
//
// The rule, applied by one server-side function call per write (so a writer paused by SIGSTOP mid-call never holds the
// resource's row lock: PostgreSQL finishes and commits the call on its own), with writers serialized on the row:
// - `enter` opens a critical section: accepted only with a token greater than the stored one;
// - any other write (`work`, `exit`) is accepted with a token equal to or greater than the stored one, so a holder can
//   keep writing until a later holder has entered, and never after.
// Notes (`note`) are log rows that write nothing (a holder saying it saw its lease lost); they are never fenced.
import pg from 'pg';

export type WriteOp = 'enter' | 'work' | 'exit';

export interface LogRow {
  readonly id: number;
  readonly resource: string;
  readonly token: number;
  readonly writer: string;
  readonly op: WriteOp | `note:${string}`;
  readonly accepted: boolean;
  /** The stored token when the write was decided. */
  readonly stored: number | null;
  readonly at: Date;
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

/** Creates the fence's tables and its write function once. */
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
      CREATE INDEX IF NOT EXISTS fence_log_resource ON fence_log (resource, id);
      CREATE OR REPLACE FUNCTION fence_write(r text, t bigint, w text, o text) RETURNS boolean AS $$
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
        INSERT INTO fence_log (resource, token, writer, op, accepted, stored) VALUES (r, t, w, o, ok, stored_token);
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

  /** Writes to `resource` with `token`; returns whether the fence accepted it. Every attempt is logged. */
  async write(resource: string, token: number, writer: string, op: WriteOp): Promise<boolean> {
    const { rows } = await this.pool.query<{ accepted: boolean }>('SELECT fence_write($1, $2, $3, $4) AS accepted', [
      resource,
      token,
      writer,
      op,
    ]);
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
    }));
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}

export interface Verdict {
  /** Critical sections (tokens) with an accepted `enter`. */
  readonly sections: number;
  /** Accepted writes in all. */
  readonly accepted: number;
  /** Rejected writes: each is a holder writing after a later holder entered, which the fence stopped. */
  readonly rejected: readonly LogRow[];
  /**
   * Accepted writes that overlap another section: a write with token t accepted after a section with a greater token
   * was entered, or an `enter` accepted twice for one token. The fence must make this impossible: always 0.
   */
  readonly acceptedOverlaps: readonly LogRow[];
  /**
   * Sections entered while the previous one was still open (no `exit` yet): the lock let two holders in at once. The
   * earlier one's later writes, if any, are in `rejected`.
   */
  readonly openedOverOpen: readonly { readonly open: number; readonly entered: number }[];
  /** Sections that never wrote `exit` (their holder died or lost the lease and stopped). */
  readonly unfinished: readonly number[];
}

/** Checks the log of one resource. */
export function checkLog(rows: readonly LogRow[]): Verdict {
  const writes = rows.filter((row) => !row.op.startsWith('note:'));
  const accepted = writes.filter((row) => row.accepted);
  const acceptedOverlaps: LogRow[] = [];
  const openedOverOpen: { open: number; entered: number }[] = [];
  const entered = new Set<number>();
  const exited = new Set<number>();
  let highest = -Infinity;
  let open: number | undefined;
  for (const row of accepted) {
    if (row.token < highest || (row.op === 'enter' && entered.has(row.token))) acceptedOverlaps.push(row);
    highest = Math.max(highest, row.token);
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
    acceptedOverlaps,
    openedOverOpen,
    unfinished: [...entered].filter((token) => !exited.has(token)),
  };
}
