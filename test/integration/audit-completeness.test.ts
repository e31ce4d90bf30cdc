import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CreateGrantCommand, CreateKeyCommand, DescribeKeyCommand, EncryptCommand, GenerateRandomCommand, type KMSClient, RetireGrantCommand, RotateKeyOnDemandCommand } from '@aws-sdk/client-kms';
import { expect } from 'chai';
import { compactTime, listTrailFiles, trailFileName } from '../../src/audit/format';
import { queryChains } from '../../src/audit/query';
import { verifyTrail } from '../../src/audit/verify';
import { readTrail } from '../support/audit-trail';
import { TestServer } from '../support/server';

/** One attempt per call: a retried request would be a second call with its own record. */
function once(client: KMSClient): KMSClient {
  (client.config as { maxAttempts: unknown }).maxAttempts = async () => 1;
  return client;
}

const publicKeys = (dir: string) => fs.readdirSync(dir).filter((f) => /^audit-signing-public-key.*\.pem$/.test(f)).map((f) => fs.readFileSync(path.join(dir, f), 'utf8'));

/** What an auditor proves: every call answered has exactly one record, under concurrency and when the trail breaks. */
describe('audit trail completeness', function () {
  this.timeout(60_000);
  let server: TestServer;
  let auditDir: string;
  after(async () => server?.stop());

  it('16 clients at once: one record per answered call, success or failure; sequence without gaps; the chain verifies', async () => {
    server = await TestServer.start({ env: { P11KMS_AUDIT_MAX_FILE_BYTES: '65536' } });
    auditDir = path.join(server.dataDir, 'audit');
    const kms = once(server.client());
    const keyId = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    const answered: Array<{ id: string; outcome: string }> = [];
    const call = async (p: Promise<{ $metadata: { requestId?: string } }>) => {
      try {
        answered.push({ id: (await p).$metadata.requestId!, outcome: 'OK' });
      } catch (err) {
        const e = err as { name: string; $metadata: { requestId?: string } };
        answered.push({ id: e.$metadata.requestId!, outcome: e.name });
      }
    };
    await Promise.all(
      Array.from({ length: 16 }, async (_, worker) => {
        for (let i = 0; i < 12; i++) {
          const kind = (worker + i) % 3;
          if (kind === 0) await call(kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('x') })));
          else if (kind === 1) await call(kms.send(new DescribeKeyCommand({ KeyId: randomUUID() })));
          else await call(kms.send(new GenerateRandomCommand({ NumberOfBytes: 0 })));
        }
      }),
    );
    expect(new Set(answered.map((a) => a.outcome))).to.deep.equal(new Set(['OK', 'NotFoundException', 'ValidationException']));
    const records = readTrail(auditDir);
    const byRequest = new Map<string, Array<Record<string, unknown>>>();
    for (const r of records) if (r.requestID) byRequest.set(r.requestID, [...(byRequest.get(r.requestID) ?? []), r]);
    for (const a of answered) {
      const mine = byRequest.get(a.id) ?? [];
      expect(mine, a.id).to.have.length(1);
      expect(mine[0].errorCode ?? 'OK').to.equal(a.outcome);
    }
    expect(records.map((r) => r.sequenceNumber)).to.deep.equal(records.map((_, i) => i + 1));
    expect(listTrailFiles(auditDir).length, 'the load spans several files').to.be.greaterThan(1);
    const report = verifyTrail({ dir: auditDir, trustedKeys: publicKeys(auditDir) });
    expect(report.findings.filter((f) => f.severity === 'error')).to.deep.equal([]);
  });

  it('records a request no route takes that claims to be a KMS call (GET / with X-Amz-Target)', async () => {
    const res = await fetch(server.endpoint, { method: 'GET', headers: { 'X-Amz-Target': 'TrentService.ListKeys' } });
    expect(res.status).to.equal(404);
    expect(await res.json()).to.include({ __type: 'UnknownOperationException' });
    const record = readTrail(auditDir).find((r) => r.requestID === res.headers.get('x-amzn-requestid'));
    expect(record).to.include({ eventName: 'ListKeys', errorCode: 'UnknownOperationException', eventType: 'AwsApiCall' });
  });

  it('records an on-demand rotation as the call and then the RotateKey service event, as AWS does', async () => {
    const kms = server.client();
    const key = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!;
    const rotated = await kms.send(new RotateKeyOnDemandCommand({ KeyId: key.KeyId }));
    const current = (await kms.send(new DescribeKeyCommand({ KeyId: key.KeyId }))).KeyMetadata!.CurrentKeyMaterialId;
    const records = readTrail(auditDir);
    const at = records.findIndex((r) => r.requestID === rotated.$metadata.requestId);
    expect(records[at].eventName).to.equal('RotateKeyOnDemand');
    const { eventID, eventTime, sequenceNumber, previousRecordHash, recordHash, ...event } = records[at + 1];
    expect(event).to.deep.equal({
      eventVersion: '1.11',
      userIdentity: { accountId: key.AWSAccountId, invokedBy: 'AWS Internal' },
      eventSource: 'kms.amazonaws.com',
      eventName: 'RotateKey',
      awsRegion: 'us-east-1',
      sourceIPAddress: 'AWS Internal',
      userAgent: 'AWS Internal',
      requestParameters: null,
      responseElements: null,
      readOnly: false,
      resources: [{ accountId: key.AWSAccountId, type: 'AWS::KMS::Key', ARN: key.Arn }],
      eventType: 'AwsServiceEvent',
      managementEvent: true,
      recipientAccountId: key.AWSAccountId,
      // The developer guide's RotateKey example (eventVersion 1.11, 2025).
      serviceEventDetails: { rotationType: 'ON_DEMAND', keyOrigin: 'AWS_KMS', previousKeyMaterialId: key.CurrentKeyMaterialId, currentKeyMaterialId: current, keyId: key.KeyId },
      eventCategory: 'Management',
    });
  });

  it("names the grant's key in CreateGrant's responseElements, as CloudTrail has since December 2022", async () => {
    const kms = server.client();
    const key = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!;
    const grant = await kms.send(new CreateGrantCommand({ KeyId: key.KeyId, GranteePrincipal: 'arn:aws:iam::111122223333:role/app', Operations: ['Decrypt'] }));
    const record = readTrail(auditDir).find((r) => r.requestID === grant.$metadata.requestId);
    expect(record!.responseElements).to.deep.equal({ grantId: grant.GrantId, keyId: key.Arn });
  });

  it('RetireGrant by grant token: the record names the grant (additionalEventData.grantId) and its key (resources), as CloudTrail does', async () => {
    const kms = server.client();
    const key = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!;
    const grant = await kms.send(new CreateGrantCommand({ KeyId: key.KeyId, GranteePrincipal: 'arn:aws:iam::111122223333:role/app', Operations: ['Decrypt'] }));
    const retired = await kms.send(new RetireGrantCommand({ GrantToken: grant.GrantToken }));
    const record = readTrail(auditDir).find((r) => r.requestID === retired.$metadata.requestId)!;
    expect(record.requestParameters).to.equal(null);
    expect(record.responseElements).to.equal(null);
    expect(record.additionalEventData).to.include({ grantId: grant.GrantId });
    expect(record.resources).to.deep.equal([{ accountId: key.AWSAccountId, type: 'AWS::KMS::Key', ARN: key.Arn }]);
  });

  it('audit query --to finds a record written to a file opened after it was made (a rotation between the call and its write)', () => {
    const copy = fs.mkdtempSync(path.join(os.tmpdir(), 'p11kms-audit-query-'));
    const [first] = listTrailFiles(auditDir);
    const record = readTrail(auditDir)[0];
    const made = Date.parse(record.eventTime);
    // The file's name says it was opened a minute after its first record was made.
    fs.copyFileSync(path.join(auditDir, first.name), path.join(copy, trailFileName(first.sequence, made + 60_000)));
    expect(compactTime(made + 60_000)).to.not.equal(compactTime(made));
    const found = [...queryChains([copy], { to: made })].map((r) => r.sequenceNumber);
    expect(found).to.include(record.sequenceNumber);
  });

  it('a trail that breaks under load: every call answered before has its record, every call after is KMSInternalException', async () => {
    const kms = once(server.client());
    const keyId = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    const acknowledged: string[] = [];
    const refused: string[] = [];
    let broken = false;
    const moved = `${auditDir}.moved`;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        for (;;) {
          try {
            acknowledged.push((await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('y') }))).$metadata.requestId!);
            // Counted, not timed: the trail breaks once enough calls were answered.
            if (acknowledged.length === 24 && !broken) {
              broken = true;
              fs.renameSync(auditDir, moved);
              fs.writeFileSync(auditDir, 'not a directory');
            }
          } catch (err) {
            expect((err as Error).name).to.equal('KMSInternalException');
            refused.push((err as { $metadata: { requestId: string } }).$metadata.requestId);
            return;
          }
        }
      }),
    );
    await server.kill();
    fs.unlinkSync(auditDir);
    fs.renameSync(moved, auditDir);
    expect(refused).to.have.length(8);
    expect(server.stderr()).to.match(/audit trail cannot be written/);
    const recorded = new Set(readTrail(auditDir).map((r) => r.requestID));
    expect(acknowledged.filter((id) => !recorded.has(id)), 'answered without a record').to.deep.equal([]);
  });
});

describe('audit trail: a tail digest the token failed to sign', function () {
  this.timeout(60_000);
  let server: TestServer;
  after(async () => server?.stop());

  it('is signed on a retry, with no new record to prompt it', async () => {
    const faults = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'p11kms-faults-')), 'faults.json');
    fs.writeFileSync(faults, '[]');
    server = await TestServer.start({ env: { NODE_ENV: 'test', P11KMS_TEST_FAULTS: faults, P11KMS_AUDIT_UNSIGNED_MAX_SECONDS: '2' } });
    const dir = path.join(server.dataDir, 'audit');
    // Every attempt the token layer makes at the tail digest's signature fails (it tries 3 times).
    fs.writeFileSync(faults, JSON.stringify([{ call: 'C_SignAsync', ckr: 'CKR_FUNCTION_FAILED', times: 3 }]));
    await server.client().send(new CreateKeyCommand({}));
    await server.waitForLog(/audit digest for the unsigned tail failed/, 30_000);
    const retried = () => fs.readdirSync(dir).some((f) => f.startsWith('digest-') && fs.readFileSync(path.join(dir, f), 'utf8').includes('"reason":"tail:retry"'));
    for (let polls = 0; !retried(); polls++) {
      expect(polls, 'a digest signed by the retry').to.be.below(300);
      await new Promise((r) => setTimeout(r, 100));
    }
    await server.stop();
    expect(verifyTrail({ dir, trustedKeys: publicKeys(dir) }).ok).to.equal(true);
  });
});
