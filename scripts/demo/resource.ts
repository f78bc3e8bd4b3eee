// The shared resource of the demo's service processes: a PostgreSQL row when a server is reachable, else a JSON file.
// Each single read or write is atomic (as one SQL statement is); a read-modify-write spanning two calls is not.
import { mkdirSync, readFileSync, renameSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';

export type ResourceSpec =
  | { readonly kind: 'postgres'; readonly url: string; readonly table: string }
  | { readonly kind: 'file'; readonly path: string };

export interface Cell {
  readonly value: number;
  /** The newest fencing token a fenced write brought (0 if none). */
  readonly token: number;
}

export interface SharedResource {
  readonly spec: ResourceSpec;
  read(key: string): Promise<Cell>;
  /** Sets the value, whoever asks. */
  write(key: string, value: number): Promise<void>;
  /** Sets the value only if `token` is greater than every token accepted before; returns whether it did. */
  fencedWrite(key: string, value: number, token: number): Promise<boolean>;
  /** Creates or resets a cell. */
  reset(key: string, value: number): Promise<void>;
  /** Removes the cells this run made (the table stays). */
  remove(keys: readonly string[]): Promise<void>;
  close(): Promise<void>;
}

export function describeResource(spec: ResourceSpec): string {
  if (spec.kind === 'file') return `a JSON file, ${spec.path}`;
  const url = new URL(spec.url);
  return `a PostgreSQL row in table ${spec.table}, database ${url.pathname.slice(1)} at ${url.host}`;
}

const createTable = (table: string) =>
  `CREATE TABLE IF NOT EXISTS ${pg.escapeIdentifier(table)} (key text PRIMARY KEY, value integer NOT NULL, token bigint NOT NULL)`;

/** PostgreSQL at `url` if it answers within a couple of seconds and lets us make the table, else a JSON file. */
export async function chooseResource(url: string, fallbackPath: string): Promise<ResourceSpec> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
  const table = 'temporal_coordination_demo';
  try {
    await client.connect();
    await client.query(createTable(table));
    return { kind: 'postgres', url, table };
  } catch {
    return { kind: 'file', path: fallbackPath };
  } finally {
    await client.end().catch(() => {});
  }
}

export async function openResource(spec: ResourceSpec): Promise<SharedResource> {
  return spec.kind === 'postgres' ? openPostgres(spec) : openFile(spec);
}

async function openPostgres(spec: ResourceSpec & { kind: 'postgres' }): Promise<SharedResource> {
  const pool = new pg.Pool({ connectionString: spec.url, max: 2, connectionTimeoutMillis: 5_000 });
  const table = pg.escapeIdentifier(spec.table);
  await pool.query(createTable(spec.table));
  return {
    spec,
    async read(key) {
      const { rows } = await pool.query<{ value: number; token: string }>(
        `SELECT value, token FROM ${table} WHERE key = $1`,
        [key],
      );
      const row = rows[0];
      if (!row) throw new Error(`No demo cell ${key}`);
      return { value: row.value, token: Number(row.token) };
    },
    async write(key, value) {
      await pool.query(`UPDATE ${table} SET value = $2 WHERE key = $1`, [key, value]);
    },
    async fencedWrite(key, value, token) {
      const { rowCount } = await pool.query(
        `UPDATE ${table} SET value = $2, token = $3 WHERE key = $1 AND token < $3`,
        [key, value, token],
      );
      return rowCount === 1;
    },
    async reset(key, value) {
      await pool.query(
        `INSERT INTO ${table} (key, value, token) VALUES ($1, $2, 0)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, token = 0`,
        [key, value],
      );
    },
    async remove(keys) {
      await pool.query(`DELETE FROM ${table} WHERE key = ANY($1)`, [keys]);
    },
    close: () => pool.end(),
  };
}

function openFile(spec: ResourceSpec & { kind: 'file' }): SharedResource {
  const mutex = `${spec.path}.lock`;
  const load = (): Record<string, Cell> => {
    try {
      return JSON.parse(readFileSync(spec.path, 'utf8')) as Record<string, Cell>;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {};
      throw error;
    }
  };
  // One statement at a time, like a database: a directory is created atomically or not at all.
  async function atomically<T>(fn: (cells: Record<string, Cell>) => T): Promise<T> {
    for (;;) {
      try {
        mkdirSync(mutex);
        break;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        await sleep(1);
      }
    }
    try {
      const cells = load();
      const result = fn(cells);
      writeFileSync(`${spec.path}.tmp`, JSON.stringify(cells));
      renameSync(`${spec.path}.tmp`, spec.path);
      return result;
    } finally {
      rmdirSync(mutex);
    }
  }
  const cell = (cells: Record<string, Cell>, key: string): Cell => {
    const found = cells[key];
    if (!found) throw new Error(`No demo cell ${key}`);
    return found;
  };
  return {
    spec,
    read: (key) => atomically((cells) => cell(cells, key)),
    async write(key, value) {
      await atomically((cells) => (cells[key] = { ...cell(cells, key), value }));
    },
    fencedWrite: (key, value, token) =>
      atomically((cells) => {
        if (cell(cells, key).token >= token) return false;
        cells[key] = { value, token };
        return true;
      }),
    async reset(key, value) {
      await atomically((cells) => (cells[key] = { value, token: 0 }));
    },
    async remove() {
      rmSync(spec.path, { force: true });
    },
    close: async () => {},
  };
}
