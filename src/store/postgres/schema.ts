import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Pool, PoolClient } from 'pg';
import type { Logger } from 'pino';
import { holdClient } from './held-client';

/** Versioned migrations kept in the repository: migrations/postgres/NNN-<what>.sql. */
export const MIGRATIONS_DIR = path.resolve(__dirname, '..', '..', '..', '..', 'migrations', 'postgres');

/** Every start-up migrates under this advisory lock, so two nodes never apply the same step. */
const MIGRATION_LOCK = 0x70313173; // 'p11s'

interface Migration {
  version: number;
  name: string;
  sql: string;
}

export function migrations(dir = MIGRATIONS_DIR): Migration[] {
  const found = fs
    .readdirSync(dir)
    .map((name) => ({ name, m: /^(\d{3})-[\w-]+\.sql$/.exec(name) }))
    .filter((f): f is { name: string; m: RegExpExecArray } => f.m !== null)
    .map(({ name, m }) => ({ version: Number(m[1]), name, sql: fs.readFileSync(path.join(dir, name), 'utf8') }))
    .sort((a, b) => a.version - b.version);
  // Two branches adding the same number would apply one of them on some databases only.
  for (let i = 1; i < found.length; i++) {
    if (found[i].version === found[i - 1].version) throw new Error(`migrations ${found[i - 1].name} and ${found[i].name} share version ${found[i].version}: renumber one`);
  }
  return found;
}

export function newerSchemaMessage(found: number, known: number): string {
  return `the PostgreSQL schema is at version ${found}, newer than this p11kms knows (${known}): a newer p11kms migrated it`;
}

/** How often a migration losing a serialization conflict to a running node's write is tried again. */
const MIGRATION_ATTEMPTS = 20;

/**
 * One step, SERIALIZABLE: nodes of the previous release still running read the schema
 * version in each of their write transactions (PostgresStore), so a step committing while
 * one of them writes conflicts with that read and one of the two is rolled back, never a
 * record in the old shape written past the step. Losing that conflict, the step runs again.
 */
async function applyMigration(client: PoolClient, m: Migration): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    await client.query('BEGIN ISOLATION LEVEL SERIALIZABLE');
    try {
      await client.query(m.sql);
      await client.query('INSERT INTO p11kms_schema (version, name) VALUES ($1, $2)', [m.version, m.name]);
      await client.query('COMMIT');
      return;
    } catch (err) {
      await client.query('ROLLBACK');
      if ((err as { code?: string }).code === '40001' && attempt < MIGRATION_ATTEMPTS) continue;
      throw new Error(`schema migration ${m.name} failed: ${(err as Error).message}`);
    }
  }
}

/**
 * Brings the schema up to this code's newest migration, each step in its own transaction.
 * A database already past what this code knows is refused: an older node must not write
 * records in a shape the newer schema no longer means.
 */
export async function migrateSchema(pool: Pool, log: Logger, known = migrations()): Promise<{ from: number; to: number }> {
  const { client, release } = await holdClient(pool, log, 'schema migration');
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    try {
      await client.query(
        'CREATE TABLE IF NOT EXISTS p11kms_schema (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())',
      );
      const { rows } = await client.query<{ v: number | null }>('SELECT max(version) AS v FROM p11kms_schema');
      const from = rows[0].v ?? 0;
      const newest = known.at(-1)?.version ?? 0;
      if (from > newest) throw new Error(`${newerSchemaMessage(from, newest)}; run that version on this node too`);
      for (const m of known.filter((x) => x.version > from)) await applyMigration(client, m);
      return { from, to: Math.max(from, newest) };
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]);
    }
  } finally {
    release();
  }
}
