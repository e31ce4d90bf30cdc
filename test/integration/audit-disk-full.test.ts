import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CreateKeyCommand, DecryptCommand, EncryptCommand, type KMSClient } from '@aws-sdk/client-kms';
import { expect } from 'chai';
import pino from 'pino';
import { apiCallEvent } from '../../src/audit/event';
import { queryTrail } from '../../src/audit/query';
import { AuditTrail } from '../../src/audit/trail';
import { listTrailFiles } from '../../src/audit/format';
import { verifyTrail } from '../../src/audit/verify';
import { loadConfig, loadHsmProfile } from '../../src/config/config';
import { AuditSigner } from '../../src/custody/audit-signer';
import { Token } from '../../src/custody/token';
import { auditVerify, readTrail, trailFiles } from '../support/audit-trail';
import { expectKmsError, TestServer } from '../support/server';
import { fillDisk, mountSmallDisk, unmountSmallDisk } from '../support/small-disk';
import { activeToken } from '../support/test-tokens';


/** The p11kms_audit_trail_writable gauge an operator alerts on. */
async function trailWritable(server: TestServer): Promise<number> {
  const text = await (await fetch(`${server.endpoint}/metrics`)).text();
  return Number(/^p11kms_audit_trail_writable (\d+)$/m.exec(text)?.[1]);
}

async function readiness(server: TestServer): Promise<{ status: number; checks: Record<string, string> }> {
  const res = await fetch(`${server.endpoint}/ready`);
  return { status: res.status, checks: ((await res.json()) as { checks: Record<string, string> }).checks };
}

/** Encrypts until a request is refused (a full disk still takes what fits in the file's last page); the answered request ids. */
async function encryptUntilRefused(kms: KMSClient, keyId: string): Promise<{ answered: string[]; refused: Error & { name: string; $metadata?: { httpStatusCode?: number } } }> {
  const answered: string[] = [];
  for (let i = 0; i < 50; i++) {
    try {
      answered.push((await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from(`full ${i}`) }))).$metadata.requestId!);
    } catch (err) {
      return { answered, refused: err as Error & { name: string; $metadata?: { httpStatusCode?: number } } };
    }
  }
  throw new Error('50 requests were answered on a full disk: their records cannot all have been written');
}

/**
 * A trail in the test process on a 1 MiB disk of its own, signed by the real token's audit
 * signer: what puts whole records of refused requests after the last durable one (a batch cut
 * short) is reachable only here, since only the process knows where that is.
 */
async function inProcessTrail(name: string) {
  const disk = mountSmallDisk('1m');
  const dir = path.join(disk, 'audit');
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `p11kms-audit-${name}-`));
  const log = pino({ level: 'silent' });
  const token = Token.open(loadHsmProfile(loadConfig({ env: { P11KMS_DATA_DIR: dataDir, P11KMS_HSM_PROFILE: activeToken().profile } })), dataDir, log);
  const signer = await AuditSigner.open(token);
  const settings = { dir, maxFileBytes: 1 << 20, rotationSeconds: 3600, fsync: 'always' as const, unsignedMaxSeconds: 3600, unsignedMaxRecords: 10_000, signingKeyRotationDays: 0 };
  return {
    dir,
    filler: path.join(disk, 'filler'),
    log,
    signer,
    settings,
    close: () => {
      token.close();
      unmountSmallDisk(disk);
    },
  };
}

/** About 1 KB each (a long user agent): a few fit in the space leaveTwoPages leaves. */
function event(i: number) {
  return apiCallEvent({ dialect: 'aws-json', time: Date.now(), requestId: `request-${i}`, operation: 'GenerateRandom', region: 'us-east-1', sourceIp: '127.0.0.1', userAgent: 'agent '.repeat(100), input: { NumberOfBytes: 8 }, inputDecoded: true });
}

/** Fills the disk, then frees two pages: the next batch fits in part. */
function leaveTwoPages(filler: string): void {
  fillDisk(filler);
  fs.truncateSync(filler, fs.statSync(filler).size - 2 * 4096);
}

describe('audit trail on a full disk', function () {
  this.timeout(120_000);

  it('refuses requests while the trail cannot be written, answers again once it can without a restart, and verify passes', async () => {
    const disk = mountSmallDisk('2m');
    const auditDir = path.join(disk, 'audit');
    const filler = path.join(disk, 'filler');
    let server = await TestServer.start({ env: { P11KMS_AUDIT_DIR: auditDir } });
    try {
      const kms = server.client();
      const keyId = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
      fillDisk(filler);
      const { answered, refused } = await encryptUntilRefused(kms, keyId);
      expect([refused.name, refused.$metadata?.httpStatusCode]).to.deep.equal(['KMSInternalException', 500]);
      // Still full: the next request tries to write again, fails, and is refused the same way.
      const again = await expectKmsError(kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('still full') })));
      expect([again.name, again.$metadata?.httpStatusCode]).to.deep.equal(['KMSInternalException', 500]);
      expect(await trailWritable(server)).to.equal(0);
      const down = await readiness(server);
      expect([down.status, down.checks.audit]).to.deep.equal([503, 'audit trail write failed: ENOSPC: no space left on device, write']);
      await server.waitForLog(/audit trail cannot be written/);

      // Space returns: the next requests are answered, by the same process; those arriving
      // together share one attempt (one recovery record).
      fs.rmSync(filler);
      const together = await Promise.all(Array.from({ length: 8 }, (_, i) => kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from(`after ${i}`) }))));
      answered.push(...together.map((r) => r.$metadata.requestId!));
      const decrypted = await kms.send(new DecryptCommand({ CiphertextBlob: together[0].CiphertextBlob }));
      expect(Buffer.from(decrypted.Plaintext!).toString()).to.equal('after 0');
      answered.push(decrypted.$metadata.requestId!);
      expect(await readiness(server)).to.deep.include({ status: 200 });
      expect(await trailWritable(server)).to.equal(1);
      await server.waitForLog(/audit trail can be written again/);

      // A second outage; this time the readiness probe is the first to find the disk writable
      // (a load balancer sends no requests to a node that is not ready).
      fillDisk(filler);
      answered.push(...(await encryptUntilRefused(kms, keyId)).answered);
      expect((await readiness(server)).status).to.equal(503);
      fs.rmSync(filler);
      expect(await readiness(server)).to.deep.include({ status: 200 });
      answered.push((await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('after the probe') }))).$metadata.requestId!);
      await server.stop();

      // Every answered request is recorded; each recovery says what failed and continues the chain.
      const records = readTrail(auditDir);
      const recorded = new Set(records.map((r) => r.requestID));
      expect(answered.filter((id) => !recorded.has(id))).to.deep.equal([]);
      const recovery = records.filter((r) => r.eventName === 'AuditTrailRecovered');
      expect(recovery.map((r) => r.additionalEventData.writeFailure)).to.deep.equal(Array(2).fill('audit trail write failed: ENOSPC: no space left on device, write'));
      for (const r of recovery) expect(r.sequenceNumber).to.equal(r.additionalEventData.lastIntactSequence + 1);
      const { code, stdout } = await auditVerify(auditDir);
      expect(stdout.match(/NOTE .*\(audit trail write failed: ENOSPC: no space left on device, write\).*without a restart/g)).to.have.length(2);
      expect(code, stdout).to.equal(0);

      // A restart finds nothing left to recover: the evidence is already described.
      const files = trailFiles(auditDir).length;
      server = await server.restart();
      await server.client().send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('restarted') }));
      await server.stop();
      expect(server.stderr()).not.to.match(/incomplete record/);
      expect(readTrail(auditDir).filter((r) => r.eventName === 'AuditTrailRecovered')).to.have.length(2);
      expect(trailFiles(auditDir)).to.have.length(files + 1);
      const afterRestart = await auditVerify(auditDir);
      expect(afterRestart.code, afterRestart.stdout).to.equal(0);
    } finally {
      await server.stop();
      unmountSmallDisk(disk);
    }
  });

  it('after a crash before the recovery was signed, start-up leaves the described bytes alone, whole records included', async () => {
    // In the test process: one batch of many records cut short by the full disk is what puts
    // whole records of refused requests after the last durable one.
    const rig = await inProcessTrail('crash');
    const { dir, filler, settings, signer, log } = rig;
    const clock = { now: () => Date.now() };
    const crashed = await AuditTrail.open(settings, signer, clock, log);
    try {
      await crashed.record(event(0));
      leaveTwoPages(filler);
      // The first is written at once; the others queue behind its fdatasync and go as one batch.
      const outcomes = await Promise.allSettled(Array.from({ length: 30 }, (_, i) => crashed.record(event(i + 1))));
      expect(outcomes.filter((o) => o.status === 'rejected').length).to.be.greaterThan(0);
      fs.rmSync(filler);
      await crashed.record(event(100));
      await crashed.digestNow('test');
      const recovered = readTrail(dir).find((r) => r.eventName === 'AuditTrailRecovered')!;
      const torn = fs.readFileSync(path.join(dir, recovered.additionalEventData.tornFile)).subarray(recovered.additionalEventData.tornOffset);
      expect(torn.toString().split('\n').length - 1, 'whole records after the last durable one').to.be.greaterThan(0);
      // The process dies before the digests that list the torn bytes are signed.
      const digests = fs.readdirSync(dir).filter((f) => f.startsWith('digest-')).sort();
      const signedBefore = digests.filter((f) => !/"reason":"[^"]*(recovered|test)/.test(fs.readFileSync(path.join(dir, f), 'utf8')));
      for (const f of digests.filter((d) => !signedBefore.includes(d))) fs.rmSync(path.join(dir, f));

      const restarted = await AuditTrail.open(settings, signer, clock, log);
      await restarted.record(event(200));
      await restarted.close();
      expect(readTrail(dir).filter((r) => r.eventName === 'AuditTrailRecovered')).to.have.length(1);
      const report = verifyTrail({ dir, trustedKeys: signer.publicKeyPems });
      expect(report.findings.filter((f) => f.severity === 'error')).to.deep.equal([]);
      expect(report.records).to.equal(recovered.sequenceNumber + 2);
      // Query leaves that evidence out too: each record of the chain once, in order.
      expect([...queryTrail(dir, {})].map((r) => r.sequenceNumber)).to.deep.equal(Array.from({ length: report.records }, (_, i) => i + 1));
    } finally {
      await crashed.close();
      rig.close();
    }
  });

  it('a shutdown after space returned describes the refused requests\' records: after the restart they are not events, nor chain records of a range verified up to the outage', async () => {
    // In the test process, as above: a batch cut short puts whole records of refused requests
    // after the last durable one; only the process that refused them knows where that is.
    const rig = await inProcessTrail('shutdown');
    const { dir, filler, settings, signer, log } = rig;
    // The service's clock, moved on during the outage: the recovery's file opens a minute later.
    let now = Date.now();
    const clock = { now: () => now };
    const stopped = await AuditTrail.open(settings, signer, clock, log);
    try {
      await stopped.record(event(0));
      leaveTwoPages(filler);
      const outcomes = await Promise.allSettled(Array.from({ length: 30 }, (_, i) => stopped.record(event(i + 1))));
      const refused = outcomes.flatMap((o, i) => (o.status === 'rejected' ? [`request-${i + 1}`] : []));
      const onDisk = fs.readFileSync(path.join(dir, trailFiles(dir).at(-1)!), 'utf8');
      expect(refused.filter((id) => onDisk.includes(`"requestID":"${id}"`)), 'whole records of refused requests reached the file').to.not.deep.equal([]);
      // Space returns; the service is stopped before any request came.
      fs.rmSync(filler);
      now += 60_000;
      await stopped.close();

      const restarted = await AuditTrail.open(settings, signer, clock, log);
      await restarted.close();
      const events = [...queryTrail(dir, {})].map((r) => r.requestID);
      expect(refused.filter((id) => events.includes(id)), 'refused requests listed as events').to.deep.equal([]);
      expect(outcomes.flatMap((o, i) => (o.status === 'fulfilled' && !events.includes(`request-${i + 1}`) ? [`request-${i + 1}`] : [])), 'answered requests missing').to.deep.equal([]);
      expect(readTrail(dir).filter((r) => r.eventName === 'AuditTrailRecovered')).to.have.length(1);
      expect(verifyTrail({ dir, trustedKeys: signer.publicKeyPems }).findings.filter((f) => f.severity === 'error')).to.deep.equal([]);
      // Verified up to the outage only: the recovery record that describes the failed file's
      // end is in a file after the range; the refused requests' records are not the chain's.
      const failedFile = listTrailFiles(dir)[0];
      const range = verifyTrail({ dir, trustedKeys: signer.publicKeyPems, to: failedFile.time + 1000 });
      expect(range.findings.filter((f) => f.severity === 'error')).to.deep.equal([]);
      expect([range.files, range.records]).to.deep.equal([1, 1 + outcomes.filter((o) => o.status === 'fulfilled').length]);
    } finally {
      await stopped.close();
      rig.close();
    }
  });
});
