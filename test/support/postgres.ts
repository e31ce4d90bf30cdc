import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client } from 'pg';

/**
 * One throwaway PostgreSQL server per test process, started on first use in a temporary
 * directory on a free port (as the `postgres` system user when running as root: the server
 * refuses root) and stopped when the process exits. Each caller gets a database of its own.
 * If the server cannot start, the tests that need it fail: nothing is skipped.
 */
let server: Promise<{ port: number; child: ChildProcess; dir: string }> | undefined;

export async function freshDatabaseUrl(): Promise<string> {
  const { port } = await (server ??= startServer());
  const name = `p11kms_${randomBytes(6).toString('hex')}`;
  const admin = new Client({ host: '127.0.0.1', port, user: 'kms', database: 'postgres' });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  return `postgres://kms@127.0.0.1:${port}/${name}`;
}

/**
 * A PostgreSQL server of the caller's own (not the shared one), for tests that make the
 * database stop answering: `freeze` stops the server and every one of its processes
 * (SIGSTOP), as a hung database host or a network cut without a reset looks to a client;
 * `thaw` lets it go on. Stopped with the test process, thawed first.
 */
export interface OwnPostgres {
  databaseUrl(): Promise<string>;
  freeze(): void;
  thaw(): void;
  /** Shuts the server down (fast shutdown: sessions are ended) and returns once it has exited. */
  stop(): Promise<void>;
  /** Starts it again on the same data and port. */
  start(): Promise<void>;
}

export async function ownPostgres(): Promise<OwnPostgres> {
  const started = await startServer();
  const admin = { host: '127.0.0.1', port: started.port, user: 'kms', database: 'postgres' };
  const processes = () => {
    const postmaster = Number(fs.readFileSync(path.join(started.dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
    return [postmaster, ...childrenOf(postmaster)];
  };
  const signal = (sig: NodeJS.Signals) => {
    for (const pid of processes()) {
      try {
        process.kill(pid, sig);
      } catch {
        // A backend that ended meanwhile.
      }
    }
  };
  started.beforeStop = () => signal('SIGCONT');
  return {
    async databaseUrl() {
      const name = `p11kms_${randomBytes(6).toString('hex')}`;
      const c = new Client(admin);
      await c.connect();
      try {
        await c.query(`CREATE DATABASE ${name}`);
      } finally {
        await c.end();
      }
      return `postgres://kms@127.0.0.1:${started.port}/${name}`;
    },
    freeze: () => signal('SIGSTOP'),
    thaw: () => signal('SIGCONT'),
    async stop() {
      const exited = started.child.exitCode !== null ? Promise.resolve() : new Promise((resolve) => started.child.once('exit', resolve));
      // runuser stops itself when its child is stopped (freeze) and waits to be continued.
      if (started.child.pid) process.kill(started.child.pid, 'SIGCONT');
      process.kill(processes()[0], 'SIGINT');
      await exited;
    },
    start: () => started.restart(),
  };
}

/** Process ids whose parent is `pid` (from /proc: no tool needed). */
function childrenOf(pid: number): number[] {
  return fs
    .readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        // Fields after the command name, which is in parentheses and may hold spaces.
        const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid;
      } catch {
        return false;
      }
    })
    .map(Number);
}

function postgresBin(): string {
  const root = '/usr/lib/postgresql';
  const versions = fs.existsSync(root) ? fs.readdirSync(root).filter((v) => fs.existsSync(path.join(root, v, 'bin', 'postgres'))) : [];
  if (versions.length === 0) throw new Error('PostgreSQL is not installed (apt package postgresql; `npm test` installs it)');
  return path.join(root, versions.sort((a, b) => Number(b) - Number(a))[0], 'bin');
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

interface StartedServer {
  port: number;
  child: ChildProcess;
  dir: string;
  beforeStop?: () => void;
  /** Starts the server again on the same data directory and port (after `stop`). */
  restart(): Promise<void>;
}

async function startServer(): Promise<StartedServer> {
  const bin = postgresBin();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'p11kms-pg-'));
  const asRoot = process.getuid?.() === 0;
  const run = (cmd: string, args: string[]) => (asRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args]) as [string, string[]];
  if (asRoot) execFileSync('chown', ['postgres', dir]);
  execFileSync(...run(path.join(bin, 'initdb'), ['-D', path.join(dir, 'data'), '-U', 'kms', '-A', 'trust', '--no-sync', '-E', 'UTF8']), { stdio: 'ignore' });
  const port = await freePort();
  let log = '';
  const launch = () => {
    const child = spawn(
      ...run(path.join(bin, 'postgres'), ['-D', path.join(dir, 'data'), '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', '-c', 'max_connections=300']),
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    return child;
  };
  const accepting = async (child: ChildProcess) => {
    for (let i = 0; i < 300; i++) {
      if (child.exitCode !== null) throw new Error(`PostgreSQL exited at start-up:\n${log}`);
      const probe = new Client({ host: '127.0.0.1', port, user: 'kms', database: 'postgres' });
      try {
        await probe.connect();
        await probe.end();
        return;
      } catch {
        await probe.end().catch(() => undefined);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    throw new Error(`PostgreSQL did not accept connections:\n${log}`);
  };
  const started: StartedServer = {
    port,
    child: launch(),
    dir,
    async restart() {
      started.child = launch();
      await accepting(started.child);
    },
  };
  process.once('exit', () => {
    // A frozen server would keep the signal below pending for ever.
    started.beforeStop?.();
    // runuser does not pass signals on: stop the server itself (immediate shutdown, throwaway data).
    try {
      const pid = Number(fs.readFileSync(path.join(dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
      process.kill(pid, 'SIGQUIT');
    } catch {
      started.child.kill('SIGKILL');
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });
  await accepting(started.child);
  return started;
}
