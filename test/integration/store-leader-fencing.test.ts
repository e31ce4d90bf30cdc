import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CreateKeyCommand, DescribeKeyCommand, ScheduleKeyDeletionCommand } from '@aws-sdk/client-kms';
import { expect } from 'chai';
import { Client } from 'pg';
import { BACKGROUND_TASK } from '../../src/lifecycle/leadership';
import { lockId } from '../../src/store/postgres/postgres-store';
import { readTrail } from '../support/audit-trail';
import { until } from '../support/in-process';
import { freshDatabaseUrl } from '../support/postgres';
import { postgresRelay, type PostgresRelay } from '../support/postgres-relay';
import { metricSample, TestServer } from '../support/server';

/**
 * The cluster's background duties are fenced by the leader's lock: each duty transaction
 * proves, inside itself, that the node's lock session still holds the PostgreSQL advisory
 * lock, else it rolls back, the pass stops and the node steps down. The node leading here
 * runs 8 days ahead (the other at the real time): a deletion the other node schedules for 7
 * days from now is due at once for it alone, so its first sweep after the schedule tries it.
 */
const DAY_S = 24 * 60 * 60;
const AHEAD_S = 8 * DAY_S;
const DELETED = /"msg":"key deleted at the end of its waiting period"/g;
const TOOK_LOCK = /"msg":"this process now runs this background task for the cluster"/g;
const TAKEOVER = /"msg":"running the background work now for this holding of the lock/g;
const STEPPED_DOWN = 'background-task locks lost with their connection';
const HELD_AT_COMMIT = 'test hook: a background duty transaction waits between its fence check and its COMMIT';
const WAITS_FOR_EARLIER = "waits for the previous holder's transactions that passed their fence";
const GAVE_UP_WAITING = "the previous holder's transactions that passed their fence did not end in time";

const count = (text: string, pattern: RegExp) => (text.match(pattern) ?? []).length;
const leads = async (server: TestServer) => metricSample(await (await fetch(`${server.endpoint}/metrics`)).text(), 'p11kms_background_leader ') === 1;
const gone = (server: TestServer, keyId: string) =>
  server
    .client({ clockOffsetMs: AHEAD_S * 1000 })
    .send(new DescribeKeyCommand({ KeyId: keyId }))
    .then(
      () => false,
      (e: Error) => e.name === 'NotFoundException',
    );
/** The DeleteKey records of `arn` in every chain of the shared audit directory. */
function deleteKeyRecords(dataDir: string, arn: string): unknown[] {
  const root = path.join(dataDir, 'audit');
  return fs
    .readdirSync(root)
    .filter((d) => fs.statSync(path.join(root, d)).isDirectory())
    .flatMap((d) => readTrail(path.join(root, d)))
    .filter((r) => r.eventName === 'DeleteKey' && (r.resources as { ARN: string }[] | undefined)?.some((x) => x.ARN === arn));
}

async function withAdmin<T>(databaseUrl: string, fn: (admin: Client) => Promise<T>): Promise<T> {
  const admin = new Client({ connectionString: databaseUrl });
  await admin.connect();
  try {
    return await fn(admin);
  } finally {
    await admin.end();
  }
}

/** Ends the session holding the background-work lock on the server (its node hears so only if its connection carries it). */
async function terminateLockSession(databaseUrl: string): Promise<void> {
  const ended = await withAdmin(databaseUrl, async (admin) =>
    (
      await admin.query<{ ended: boolean }>(
        "SELECT pg_terminate_backend(pid) AS ended FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND ((classid::bigint << 32) | objid::bigint) = $1::bigint",
        [lockId(BACKGROUND_TASK)],
      )
    ).rows,
  );
  expect(ended, "the leader's lock session terminated").to.deep.equal([{ ended: true }]);
}

async function createKey(server: TestServer): Promise<{ keyId: string; arn: string }> {
  const { KeyId, Arn } = (await server.client().send(new CreateKeyCommand({}))).KeyMetadata!;
  return { keyId: KeyId!, arn: Arn! };
}

/** Its deletion 7 days from now (the real time): due at once for a node 8 days ahead, never within the test for the others. */
async function scheduleDueAhead(scheduler: TestServer, keyId: string): Promise<void> {
  await scheduler.client().send(new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: 7 }));
}

describe('PostgreSQL store: background duties fenced by the leader\'s lock', function () {
  this.timeout(120_000);
  const started: TestServer[] = [];
  let relay: PostgresRelay | undefined;
  /** Files holding a duty transaction before its COMMIT: gone before the servers stop (a held transaction would hold the stop up). */
  const holdFiles: string[] = [];

  after(async () => {
    for (const file of holdFiles) fs.rmSync(file, { force: true });
    await Promise.all(started.map((s) => s.stop()));
    await relay?.close();
  });

  it('a leader whose lock session ended unheard has its next duty transaction refused: the due deletion runs once, under the lock taken again, and its lock session is named in pg_stat_activity', async () => {
    const databaseUrl = await freshDatabaseUrl();
    relay = await postgresRelay(databaseUrl);
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'p11kms-fencing-'));
    // `old` reaches PostgreSQL through the relay (its lock session can go silent) and sweeps every second.
    const old = await TestServer.start({ dataDir, clockOffsetSeconds: AHEAD_S, sweepIntervalSeconds: 1, env: { P11KMS_STORE_URL: relay.url } });
    started.push(old);
    expect(await until(() => leads(old), 60_000), 'the first node leads').to.equal(true);
    const other = await TestServer.start({ dataDir, env: { P11KMS_STORE_URL: databaseUrl } });
    started.push(other);

    const named = await withAdmin(databaseUrl, async (admin) =>
      (
        await admin.query<{ application_name: string }>(
          "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND ((l.classid::bigint << 32) | l.objid::bigint) = $1::bigint",
          [lockId(BACKGROUND_TASK)],
        )
      ).rows.map((r) => r.application_name),
    );
    expect(named, 'the lock session names its process').to.deep.equal([`p11kms background-work lock: pid ${old.pid} on ${os.hostname()}`.slice(0, 63)]);

    const { keyId, arn } = await createKey(other);
    const oldLogFrom = old.stderr().length;
    const oldLog = () => old.stderr().slice(oldLogFrom);
    expect(relay.blackhole('SELECT pg_try_advisory_lock($1) AS ok'), 'lock session blackholed').to.equal(1);
    await terminateLockSession(databaseUrl);
    // Due at once for `old` alone, which believes it still leads: its next sweep (within a
    // second; its liveness check notices no sooner than 5 s after the blackhole) tries the
    // deletion, while the lock is free or taken by `other` (it asks every 2 s).
    await scheduleDueAhead(other, keyId);
    const settled = await until(async () => oldLog().includes(STEPPED_DOWN) || count(oldLog(), DELETED) > 0, 60_000);
    expect(settled, 'the old leader neither stepped down nor deleted').to.equal(true);
    const stepDown = oldLog().indexOf(STEPPED_DOWN);
    expect(count(oldLog().slice(0, stepDown < 0 ? undefined : stepDown), DELETED), 'the old leader deleted the key after its lock session had ended').to.equal(0);
    const stepDowns = oldLog().split('\n').filter((l) => l.includes(STEPPED_DOWN));
    expect(stepDowns, 'said once, why').to.have.length(1);
    expect(stepDowns[0]).to.include('no longer holds the lock');

    // Only `old` can delete the key (it is not due for `other`): once `other` is gone, `old`
    // holds the lock again (it may have taken it again already, if free) and deletes it, once.
    await other.stop();
    expect(await until(() => gone(old, keyId), 60_000), 'the key was deleted by the new holder of the lock').to.equal(true);
    // The log line and the record follow the commit the DescribeKey saw.
    expect(await until(async () => count(oldLog(), DELETED) > 0 && deleteKeyRecords(dataDir, arn).length > 0), 'the deletion logged and recorded').to.equal(true);
    const afterStepDown = oldLog().slice(oldLog().indexOf(STEPPED_DOWN));
    expect(count(afterStepDown, TOOK_LOCK), `the lock taken again, once:\n${oldLog()}`).to.equal(1);
    expect(afterStepDown.indexOf('key deleted at the end of its waiting period'), 'deleted under the lock taken again').to.be.above(afterStepDown.indexOf('this process now runs this background task'));
    expect(count(oldLog(), DELETED) + count(other.stderr(), DELETED), 'deleted once').to.equal(1);
    expect(deleteKeyRecords(dataDir, arn), 'one DeleteKey record in the audit trail').to.have.length(1);
    expect(oldLog().split('\n').filter((l) => /request failed|unexpected failure|uncaught|deletion sweep failed/i.test(l))).to.deep.equal([]);
  });

  it('a leader that loses its lock and takes it again at once runs the takeover sweep again', async () => {
    const databaseUrl = await freshDatabaseUrl();
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'p11kms-regain-'));
    // Sweeps are hourly: only a takeover sweep can delete the key within the test.
    const leader = await TestServer.start({ dataDir, clockOffsetSeconds: AHEAD_S, sweepIntervalSeconds: 3600, env: { P11KMS_STORE_URL: databaseUrl } });
    started.push(leader);
    expect(await until(() => leads(leader), 60_000), 'the node leads').to.equal(true);
    // Its first takeover sweep (for the holding it started with) is over before the key exists.
    await leader.waitForLog(/"msg":"running the background work now for this holding of the lock/);
    const scheduler = await TestServer.start({ dataDir, env: { P11KMS_STORE_URL: databaseUrl } });
    const { keyId, arn } = await createKey(scheduler);
    await scheduleDueAhead(scheduler, keyId);
    await scheduler.stop();

    // The node hears its session end (a direct connection), and takes the lock again at its next ask.
    await terminateLockSession(databaseUrl);
    await leader.waitForLog(/background-task locks lost with their connection/);
    expect(await until(async () => count(leader.stderr(), TOOK_LOCK) === 2 && (await leads(leader)), 60_000), 'the lock taken again').to.equal(true);
    expect(await until(async () => count(leader.stderr(), TAKEOVER) === 2, 20_000), 'the takeover sweep ran again').to.equal(true);
    expect(await until(() => gone(leader, keyId), 20_000), 'the takeover sweep ran again and deleted the due key').to.equal(true);
    expect(await until(async () => count(leader.stderr(), DELETED) > 0 && deleteKeyRecords(dataDir, arn).length > 0), 'the deletion logged and recorded').to.equal(true);
    expect(count(leader.stderr(), DELETED)).to.equal(1);
    // One takeover sweep per holding of the lock (not one every time the node asks for the lock).
    expect(count(leader.stderr(), TAKEOVER), 'two holdings, two takeover sweeps').to.equal(2);
    expect(deleteKeyRecords(dataDir, arn)).to.have.length(1);
  });

  /**
   * Two nodes, `old` leading (8 days ahead, sweeping every second); its deletion of a key due
   * for it alone is held between its fence check and its COMMIT; then its lock session is
   * ended on the server, and both nodes ask for the lock. `logs` reads both nodes' logs from then on.
   */
  async function heldAtCommitWhenTheLockSessionEnds(env: Record<string, string> = {}) {
    const databaseUrl = await freshDatabaseUrl();
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'p11kms-fenced-commit-'));
    const holdFile = path.join(dataDir, 'hold-fenced-commit');
    holdFiles.push(holdFile);
    const nodeEnv = { P11KMS_STORE_URL: databaseUrl, NODE_ENV: 'test', P11KMS_TEST_HOLD_FENCED_COMMIT: holdFile, ...env };
    const old = await TestServer.start({ dataDir, clockOffsetSeconds: AHEAD_S, sweepIntervalSeconds: 1, env: nodeEnv });
    started.push(old);
    expect(await until(() => leads(old), 60_000), 'the first node leads').to.equal(true);
    await old.waitForLog(/"msg":"running the background work now for this holding of the lock/);
    const other = await TestServer.start({ dataDir, env: nodeEnv });
    started.push(other);
    // Made by `old`: its reconciliation, 8 days ahead, takes another node's creation intent for dead.
    const made = (await old.client({ clockOffsetMs: AHEAD_S * 1000 }).send(new CreateKeyCommand({}))).KeyMetadata!;
    const [keyId, arn] = [made.KeyId!, made.Arn!];

    fs.writeFileSync(holdFile, '');
    const logFrom = { old: old.stderr().length, other: other.stderr().length };
    const logs = () => old.stderr().slice(logFrom.old) + other.stderr().slice(logFrom.other);
    await scheduleDueAhead(other, keyId);
    expect(await until(async () => old.stderr().slice(logFrom.old).includes(HELD_AT_COMMIT), 60_000), 'the deletion held before its COMMIT').to.equal(true);
    await terminateLockSession(databaseUrl);
    return { old, dataDir, holdFile, keyId, arn, logs };
  }

  it("a duty transaction that passed its fence just before the lock session ended commits before the next holder runs anything: the next holder waits for it", async () => {
    const { old, dataDir, holdFile, keyId, arn, logs } = await heldAtCommitWhenTheLockSessionEnds();
    const taken = await until(async () => logs().includes(WAITS_FOR_EARLIER) || count(logs(), TAKEOVER) > 0, 60_000);
    expect(taken, 'neither node took the lock').to.equal(true);
    expect(count(logs(), TAKEOVER), `a new holding ran its duties while the old holding's fenced transaction was still open:\n${logs()}`).to.equal(0);
    expect(await gone(old, keyId), 'nothing committed yet').to.equal(false);

    // Released, the held deletion commits; then the new holder runs its duties.
    fs.rmSync(holdFile);
    expect(await until(async () => count(logs(), TAKEOVER) > 0, 60_000), 'the new holder ran its takeover sweep').to.equal(true);
    expect(await gone(old, keyId), 'the fenced deletion committed before the new holding began').to.equal(true);
    expect(await until(async () => count(logs(), DELETED) > 0 && deleteKeyRecords(dataDir, arn).length > 0), 'the deletion logged and recorded').to.equal(true);
    expect(count(logs(), DELETED), 'deleted once').to.equal(1);
    expect(deleteKeyRecords(dataDir, arn), 'one DeleteKey record in the audit trail').to.have.length(1);
    expect(logs().split('\n').filter((l) => /request failed|unexpected failure|uncaught|deletion sweep failed/i.test(l))).to.deep.equal([]);
  });

  it("a next holder that waited for the previous holder's open transaction as long as the store deadline allows lets the lock go, runs nothing, and takes it again once that transaction ended", async () => {
    const { old, dataDir, holdFile, keyId, arn, logs } = await heldAtCommitWhenTheLockSessionEnds({ P11KMS_STORE_CALL_TIMEOUT_SECONDS: '2' });
    expect(await until(async () => logs().includes(GAVE_UP_WAITING) || count(logs(), TAKEOVER) > 0, 60_000), 'neither gave up nor ran').to.equal(true);
    expect(count(logs(), TAKEOVER), `a new holding ran its duties while the old holding's fenced transaction was still open:\n${logs()}`).to.equal(0);
    fs.rmSync(holdFile);
    expect(await until(async () => count(logs(), TAKEOVER) > 0, 60_000), 'the lock taken again and the takeover sweep run').to.equal(true);
    expect(await until(() => gone(old, keyId), 60_000)).to.equal(true);
    expect(await until(async () => count(logs(), DELETED) > 0 && deleteKeyRecords(dataDir, arn).length > 0), 'the deletion logged and recorded').to.equal(true);
    expect(count(logs(), DELETED), 'deleted once').to.equal(1);
    expect(deleteKeyRecords(dataDir, arn)).to.have.length(1);
  });
});
