import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  CreateKeyCommand,
  DescribeKeyCommand,
  EncryptCommand,
  type KMSClient,
  ListKeysCommand,
  ReplicateKeyCommand,
  RotateKeyOnDemandCommand,
  ScheduleKeyDeletionCommand,
  UpdatePrimaryRegionCommand,
} from '@aws-sdk/client-kms';
import { expect } from 'chai';
import { findChains } from '../../src/audit/chains';
import { auditVerify, readTrail, type TrailRow } from '../support/audit-trail';
import { freshDatabaseUrl } from '../support/postgres';
import { createdKey, expectKmsError, type ServerOptions, TestServer } from '../support/server';
import { fillDisk, mountSmallDisk, unmountSmallDisk } from '../support/small-disk';

const DAY_S = 24 * 60 * 60;

/** Every record under an audit directory, every chain (one per process on a shared store). */
function allRecords(auditDir: string): TrailRow[] {
  return findChains([auditDir], { required: false }).flatMap((chain) => readTrail(chain));
}

const mentioning = (rows: TrailRow[], eventName: string, arn: string) =>
  rows.filter((r) => r.eventName === eventName && ((r.resources ?? []) as Array<{ ARN: string }>).some((res) => res.ARN === arn));

/** Starts a service that dies (kill -9, by itself) after committing `eventName`'s change and before writing its record. */
function crashingAt(options: ServerOptions, eventName: string): ServerOptions {
  return { ...options, env: { ...options.env, NODE_ENV: 'test', P11KMS_TEST_CRASH_BEFORE_RECORD: eventName } };
}

/** Encrypts on a full disk until a request is refused: the file's last page takes a few records still. */
async function untilTheTrailFails(kms: KMSClient, keyId: string): Promise<void> {
  for (let i = 0; i < 50; i++) {
    const failed = await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from(`full ${i}`) })).then(
      () => false,
      () => true,
    );
    if (failed) return;
  }
}

async function waitFor(what: string, check: () => boolean): Promise<void> {
  for (let i = 0; i < 600 && !check(); i++) await new Promise((r) => setTimeout(r, 50));
  expect(check(), what).to.equal(true);
}

/**
 * The crash window of docs/audit.md: a change committed to the store whose process died before
 * its record reached the trail. Its record is committed with it (the audit outbox) and written
 * at the next start-up, once, with a trail that verifies.
 */
describe('audit outbox: a change committed before a crash has its record, once', function () {
  this.timeout(120_000);
  const started: TestServer[] = [];
  const start = async (options: ServerOptions) => {
    const s = await TestServer.start(options);
    started.push(s);
    return s;
  };

  afterEach(async () => {
    await Promise.all(started.splice(0).map((s) => s.stop()));
  });

  for (const store of ['json', 'postgres'] as const) {
    it(`${store} store: CreateKey killed between commit and record is recorded at start-up, once; audit verify passes`, async () => {
      const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `p11kms-outbox-${store}-`));
      const auditDir = path.join(dataDir, 'audit');
      const options: ServerOptions = { dataDir, sweepIntervalSeconds: 1, ...(store === 'postgres' ? { env: { P11KMS_STORE_URL: await freshDatabaseUrl() } } : {}) };

      const doomed = await start(crashingAt(options, 'CreateKey'));
      const refused = await doomed.client().send(new CreateKeyCommand({ Description: 'made just before the crash' })).then(
        () => undefined,
        (err: Error) => err,
      );
      expect(refused, 'the process died before answering').to.be.instanceOf(Error);
      await doomed.exited;
      expect(allRecords(auditDir).filter((r) => r.eventName === 'CreateKey'), 'no record before the restart').to.deep.equal([]);

      const after = await start(options);
      const keys = (await after.client().send(new ListKeysCommand({}))).Keys ?? [];
      expect(keys, 'the change was committed').to.have.length(1);
      const arn = keys[0].KeyArn!;
      // A shared store's survivor delivers once the dead process's database session has ended.
      await waitFor('the record was written from the outbox', () => mentioning(allRecords(auditDir), 'CreateKey', arn).length > 0);
      const [record] = mentioning(allRecords(auditDir), 'CreateKey', arn);
      expect(record.requestParameters).to.include({ description: 'made just before the crash' });
      expect(record.additionalEventData.outbox).to.match(/never written/);

      // Another restart finds nothing left to deliver: the record stays single.
      await after.stop();
      const again = await start(options);
      await again.client().send(new DescribeKeyCommand({ KeyId: arn }));
      await again.stop();
      expect(mentioning(allRecords(auditDir), 'CreateKey', arn), 'exactly one record').to.have.length(1);
      const report = await auditVerify(auditDir);
      expect(report.code, report.stdout).to.equal(0);
    });
  }

  it('json store: ScheduleKeyDeletion killed between commit and record is recorded at start-up, once', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'p11kms-outbox-schedule-'));
    const auditDir = path.join(dataDir, 'audit');
    const first = await start({ dataDir });
    const { keyId, arn } = await createdKey(first.client());
    await first.stop();

    const doomed = await start(crashingAt({ dataDir }, 'ScheduleKeyDeletion'));
    await doomed.client().send(new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: 7 })).catch(() => undefined);
    await doomed.exited;

    const after = await start({ dataDir });
    expect((await after.client().send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!.KeyState).to.equal('PendingDeletion');
    await after.stop();
    const records = allRecords(auditDir).filter((r) => r.eventName === 'ScheduleKeyDeletion');
    expect(records, 'exactly one record').to.have.length(1);
    expect(records[0].requestParameters).to.include({ keyId, pendingWindowInDays: 7 });
    expect(records[0].resources.map((r: { ARN: string }) => r.ARN)).to.include(arn);
    const report = await auditVerify(auditDir);
    expect(report.code, report.stdout).to.equal(0);
  });

  it('json store: a crash after the record and before the entry is removed leaves one record, not two', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'p11kms-outbox-removal-'));
    const auditDir = path.join(dataDir, 'audit');
    const first = await start({ dataDir });
    const { arn } = await createdKey(first.client());
    // The entry leaves with the next transaction; none ran, so it is still in the store.
    const stored = JSON.parse(fs.readFileSync(path.join(dataDir, 'metadata.json'), 'utf8')) as { auditOutbox: unknown[] };
    expect(stored.auditOutbox, 'the entry committed with the key').to.have.length(1);
    await first.kill();

    const after = await start({ dataDir });
    await after.stop();
    expect(mentioning(allRecords(auditDir), 'CreateKey', arn), 'exactly one record').to.have.length(1);
    expect((JSON.parse(fs.readFileSync(path.join(dataDir, 'metadata.json'), 'utf8')) as { auditOutbox: unknown[] }).auditOutbox, 'removed at start-up').to.deep.equal([]);
    const report = await auditVerify(auditDir);
    expect(report.code, report.stdout).to.equal(0);
  });

  it('a CreateKey refused because the trail could not be written (disk full) has its record once the disk has room, once', async () => {
    const disk = mountSmallDisk('2m');
    const auditDir = path.join(disk, 'audit');
    const filler = path.join(disk, 'filler');
    try {
      const server = await start({ sweepIntervalSeconds: 1, env: { P11KMS_AUDIT_DIR: auditDir } });
      const kms = server.client();
      const { keyId } = await createdKey(kms);
      fillDisk(filler);
      await untilTheTrailFails(kms, keyId);
      const refused = await expectKmsError(kms.send(new CreateKeyCommand({ Description: 'made while the disk was full' })));
      expect(refused.name).to.equal('KMSInternalException');
      // Every request is refused meanwhile: the store itself shows the change.
      const made = (JSON.parse(fs.readFileSync(path.join(server.dataDir, 'metadata.json'), 'utf8')) as { keys: Array<{ arn: string }> }).keys.map((k) => k.arn);
      expect(made, 'the change stands').to.have.length(2);
      const arn = made.find((a) => !a.endsWith(keyId))!;

      fs.rmSync(filler);
      await waitFor('the record was written from the outbox', () => mentioning(readTrail(auditDir), 'CreateKey', arn).length > 0);
      await server.stop();
      expect(mentioning(readTrail(auditDir), 'CreateKey', arn), 'exactly one record').to.have.length(1);
      const report = await auditVerify(auditDir);
      expect(report.code, report.stdout).to.equal(0);
    } finally {
      await Promise.all(started.splice(0).map((s) => s.stop()));
      unmountSmallDisk(disk);
    }
  });

  it("postgres store: another process leaves a live process's undelivered entry to it; the record is written once", async () => {
    const disk = mountSmallDisk('2m');
    const filler = path.join(disk, 'filler');
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'p11kms-outbox-live-'));
    const env = { P11KMS_STORE_URL: await freshDatabaseUrl() };
    try {
      // b starts first, so it runs the deployment's background work (other processes' entries
      // included) and logs in debug; a's trail is on a disk that fills up.
      const b = await start({ dataDir, sweepIntervalSeconds: 1, env: { ...env, P11KMS_LOG_LEVEL: 'debug' } });
      const a = await start({ dataDir, sweepIntervalSeconds: 1, env: { ...env, P11KMS_AUDIT_DIR: path.join(disk, 'audit') } });
      const kms = a.client();
      const { keyId } = await createdKey(kms);
      fillDisk(filler);
      await untilTheTrailFails(kms, keyId);
      expect((await expectKmsError(kms.send(new CreateKeyCommand({ Description: 'a live process keeps its own' })))).name).to.equal('KMSInternalException');
      // b sees a's entry, finds a alive, and leaves it.
      await b.waitForLog(/entries of live processes are left to them/);
      const arn = ((await b.client().send(new ListKeysCommand({}))).Keys ?? []).map((k) => k.KeyArn!).find((x) => !x.endsWith(keyId))!;
      expect(mentioning([...allRecords(path.join(disk, 'audit')), ...allRecords(path.join(dataDir, 'audit'))], 'CreateKey', arn)).to.deep.equal([]);

      fs.rmSync(filler);
      await waitFor("a wrote its record once its disk had room", () => mentioning(allRecords(path.join(disk, 'audit')), 'CreateKey', arn).length > 0);
      await Promise.all([a.stop(), b.stop()]);
      expect(mentioning([...allRecords(path.join(disk, 'audit')), ...allRecords(path.join(dataDir, 'audit'))], 'CreateKey', arn), 'exactly one record').to.have.length(1);
      for (const dir of [path.join(disk, 'audit'), path.join(dataDir, 'audit')]) {
        const report = await auditVerify(dir);
        expect(report.code, report.stdout).to.equal(0);
      }
    } finally {
      await Promise.all(started.splice(0).map((s) => s.stop()));
      unmountSmallDisk(disk);
    }
  });

  it("json store: the deletion sweeper's DeleteKey killed between commit and record is recorded at start-up, once", async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'p11kms-outbox-sweeper-'));
    const auditDir = path.join(dataDir, 'audit');
    const first = await start({ dataDir });
    const { keyId, arn } = await createdKey(first.client());
    await first.client().send(new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: 7 }));
    await first.stop();

    // Eight days later the start-up sweep deletes the key, and the process dies before its record.
    const later = { dataDir, clockOffsetSeconds: 8 * DAY_S };
    const doomed = await TestServer.start(crashingAt(later, 'DeleteKey')).then(
      () => undefined,
      (err: Error) => err,
    );
    expect(doomed?.message, 'the process died during its start-up sweep').to.match(/exited/);
    expect(mentioning(allRecords(auditDir), 'DeleteKey', arn), 'no record before the restart').to.deep.equal([]);

    const after = await start(later);
    await after.stop();
    const stored = JSON.parse(fs.readFileSync(path.join(dataDir, 'metadata.json'), 'utf8')) as { keys: unknown[] };
    expect(stored.keys, 'the deletion was committed').to.deep.equal([]);
    const records = mentioning(allRecords(auditDir), 'DeleteKey', arn);
    expect(records, 'exactly one record').to.have.length(1);
    expect(records[0].eventType).to.equal('AwsServiceEvent');
    const report = await auditVerify(auditDir);
    expect(report.code, report.stdout).to.equal(0);
  });

  /**
   * Calls AWS records twice: a kill -9 after the call's own record and before the second one.
   * The second record travels with the change as the first does, and is written at start-up, once.
   */
  for (const store of ['json', 'postgres'] as const) {
    it(`${store} store: ReplicateKey killed before the replica region's CreateKey record has both records after the restart, once each`, async () => {
      const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `p11kms-outbox-replicate-${store}-`));
      const auditDir = path.join(dataDir, 'audit');
      const options: ServerOptions = { dataDir, sweepIntervalSeconds: 1, ...(store === 'postgres' ? { env: { P11KMS_STORE_URL: await freshDatabaseUrl() } } : {}) };
      const first = await start(options);
      const { KeyId: keyId, Arn: primaryArn } = (await first.client().send(new CreateKeyCommand({ MultiRegion: true }))).KeyMetadata!;
      await first.stop();

      const doomed = await start(crashingAt(options, 'CreateKey'));
      await doomed.client().send(new ReplicateKeyCommand({ KeyId: keyId, ReplicaRegion: 'us-west-2', Description: 'west copy' })).catch(() => undefined);
      await doomed.exited;
      const replicaArn = primaryArn!.replace(':us-east-1:', ':us-west-2:');
      expect(mentioning(allRecords(auditDir), 'ReplicateKey', replicaArn), 'the call itself was recorded before the crash').to.have.length(1);
      expect(mentioning(allRecords(auditDir), 'CreateKey', replicaArn), 'the second record was not').to.deep.equal([]);

      const after = await start(options);
      expect((await after.client({ region: 'us-west-2' }).send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!.Arn, 'the replica was committed').to.equal(replicaArn);
      await waitFor('the replica region\'s record was written from the outbox', () => mentioning(allRecords(auditDir), 'CreateKey', replicaArn).length > 0);
      await after.stop();
      const again = await start(options);
      await again.stop();
      const [replicate] = mentioning(allRecords(auditDir), 'ReplicateKey', replicaArn);
      const created = mentioning(allRecords(auditDir), 'CreateKey', replicaArn);
      expect(mentioning(allRecords(auditDir), 'ReplicateKey', replicaArn), 'one ReplicateKey record').to.have.length(1);
      expect(created, 'one CreateKey record').to.have.length(1);
      expect(created[0]).to.include({ awsRegion: 'us-west-2', requestID: replicate.requestID });
      expect(created[0].additionalEventData).to.include({ replicatedBy: 'ReplicateKey', primaryRegion: 'us-east-1' });
      expect(created[0].requestParameters).to.include({ description: 'west copy', replicaRegion: 'us-west-2' });
      expect(created[0].additionalEventData.outbox).to.match(/never written/);
      const report = await auditVerify(auditDir);
      expect(report.code, report.stdout).to.equal(0);
    });
  }

  it('json store: a crash after both of ReplicateKey\'s records and before their entries are removed leaves one of each', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'p11kms-outbox-replicate-removal-'));
    const auditDir = path.join(dataDir, 'audit');
    const first = await start({ dataDir });
    const { KeyId: keyId } = (await first.client().send(new CreateKeyCommand({ MultiRegion: true }))).KeyMetadata!;
    const replicaArn = (await first.client().send(new ReplicateKeyCommand({ KeyId: keyId, ReplicaRegion: 'us-west-2' }))).ReplicaKeyMetadata!.Arn!;
    const stored = JSON.parse(fs.readFileSync(path.join(dataDir, 'metadata.json'), 'utf8')) as { auditOutbox: Array<{ event: { eventName: string } }> };
    expect(stored.auditOutbox.map((e) => e.event.eventName).sort(), 'one entry per record, committed with the replica').to.deep.equal(['CreateKey', 'ReplicateKey']);
    await first.kill();

    const after = await start({ dataDir });
    await after.stop();
    expect(mentioning(allRecords(auditDir), 'ReplicateKey', replicaArn), 'one ReplicateKey record').to.have.length(1);
    expect(mentioning(allRecords(auditDir), 'CreateKey', replicaArn), 'one CreateKey record').to.have.length(1);
    expect((JSON.parse(fs.readFileSync(path.join(dataDir, 'metadata.json'), 'utf8')) as { auditOutbox: unknown[] }).auditOutbox, 'removed at start-up').to.deep.equal([]);
  });

  it("json store: UpdatePrimaryRegion killed before the new primary region's record has both records after the restart, once each", async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'p11kms-outbox-primary-'));
    const auditDir = path.join(dataDir, 'audit');
    const first = await start({ dataDir });
    const { KeyId: keyId, Arn: eastArn } = (await first.client().send(new CreateKeyCommand({ MultiRegion: true }))).KeyMetadata!;
    await first.client().send(new ReplicateKeyCommand({ KeyId: keyId, ReplicaRegion: 'us-west-2' }));
    await first.stop();
    const westArn = eastArn!.replace(':us-east-1:', ':us-west-2:');

    const doomed = await start(crashingAt({ dataDir }, 'UpdatePrimaryRegion@us-west-2'));
    await doomed.client().send(new UpdatePrimaryRegionCommand({ KeyId: keyId, PrimaryRegion: 'us-west-2' })).catch(() => undefined);
    await doomed.exited;
    const inRegion = (region: string) => allRecords(auditDir).filter((r) => r.eventName === 'UpdatePrimaryRegion' && r.awsRegion === region);
    expect(inRegion('us-east-1'), 'the call itself was recorded before the crash').to.have.length(1);
    expect(inRegion('us-west-2'), 'the second record was not').to.deep.equal([]);

    const after = await start({ dataDir });
    const west = (await after.client({ region: 'us-west-2' }).send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!;
    expect(west.MultiRegionConfiguration!.MultiRegionKeyType, 'the change was committed').to.equal('PRIMARY');
    await after.stop();
    expect(inRegion('us-east-1'), 'one record in the former primary region').to.have.length(1);
    expect(inRegion('us-west-2'), 'one record in the new primary region').to.have.length(1);
    const [added] = inRegion('us-west-2');
    expect(added.requestID).to.equal(inRegion('us-east-1')[0].requestID);
    expect(added.requestParameters).to.deep.equal({ keyId: westArn, primaryRegion: 'us-west-2' });
    expect((added.userIdentity as { invokedBy?: string }).invokedBy).to.equal('kms.amazonaws.com');
    const report = await auditVerify(auditDir);
    expect(report.code, report.stdout).to.equal(0);
  });

  it('json store: RotateKeyOnDemand killed before the RotateKey service event has both records after the restart, once each', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'p11kms-outbox-rotate-'));
    const auditDir = path.join(dataDir, 'audit');
    const first = await start({ dataDir });
    const key = (await first.client().send(new CreateKeyCommand({}))).KeyMetadata!;
    await first.stop();

    const doomed = await start(crashingAt({ dataDir }, 'RotateKey'));
    await doomed.client().send(new RotateKeyOnDemandCommand({ KeyId: key.KeyId })).catch(() => undefined);
    await doomed.exited;
    expect(mentioning(allRecords(auditDir), 'RotateKeyOnDemand', key.Arn!), 'the call itself was recorded before the crash').to.have.length(1);
    expect(mentioning(allRecords(auditDir), 'RotateKey', key.Arn!), 'the service event was not').to.deep.equal([]);

    const after = await start({ dataDir });
    const current = (await after.client().send(new DescribeKeyCommand({ KeyId: key.KeyId }))).KeyMetadata!.CurrentKeyMaterialId;
    expect(current, 'the rotation was committed').to.not.equal(key.CurrentKeyMaterialId);
    await after.stop();
    const rotations = mentioning(allRecords(auditDir), 'RotateKey', key.Arn!);
    expect(rotations, 'one RotateKey record').to.have.length(1);
    expect(rotations[0].eventType).to.equal('AwsServiceEvent');
    expect(rotations[0].serviceEventDetails).to.deep.equal({ rotationType: 'ON_DEMAND', keyOrigin: 'AWS_KMS', previousKeyMaterialId: key.CurrentKeyMaterialId, currentKeyMaterialId: current, keyId: key.KeyId });
    expect(mentioning(allRecords(auditDir), 'RotateKeyOnDemand', key.Arn!), 'one RotateKeyOnDemand record').to.have.length(1);
    const report = await auditVerify(auditDir);
    expect(report.code, report.stdout).to.equal(0);
  });
});
