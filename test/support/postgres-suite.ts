import { Client } from 'pg';
import { freshDatabaseUrl } from './postgres';
import { postgresRelay, type PostgresRelay } from './postgres-relay';
import { type ServerOptions, serverPerSuite, type TestServer } from './server';

/** What serverOnFreshDatabase hands the suite once its server is up. */
export interface FreshDatabaseSuite {
  server: TestServer;
  /** The database's own URL (not the relay's). */
  url: string;
  /** The relay the server reaches the database through; undefined unless `relayed`. */
  relay: PostgresRelay;
  /** The test's own connection to the database (not relayed), for what it checks or changes there. */
  db: Client;
}

/**
 * Registers hooks in the calling describe block: before its tests a database of its own is
 * made on the shared test PostgreSQL, a server (serverPerSuite) starts on it, reaching it
 * through a PostgresRelay when `relayed` (for the connection failures the relay makes), and
 * the test gets its own connection to it; `use` receives them all. After the tests the relay
 * and the connection close once the server has stopped, so the server never sees its store
 * go away while stopping. `server` is the rest of the server's options (its store URL is set here).
 */
export function serverOnFreshDatabase(options: { relayed?: boolean; server?: ServerOptions }, use: (suite: FreshDatabaseSuite) => void): void {
  let url: string;
  let relay: PostgresRelay | undefined;
  let server: TestServer;
  let db: Client | undefined;
  before(async () => {
    url = await freshDatabaseUrl();
    if (options.relayed) relay = await postgresRelay(url);
  });
  serverPerSuite(
    () => ({ ...options.server, env: { ...options.server?.env, P11KMS_STORE_URL: relay?.url ?? url } }),
    (started) => (server = started),
  );
  before(async () => {
    db = new Client({ connectionString: url });
    await db.connect();
    use({ server, url, relay: relay!, db });
  });
  after(async () => {
    await relay?.close();
    await db?.end();
  });
}
