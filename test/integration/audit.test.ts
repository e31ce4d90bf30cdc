import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import {
  CancelKeyDeletionCommand,
  CreateAliasCommand,
  CreateKeyCommand,
  DecryptCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  EnableKeyCommand,
  EncryptCommand,
  GetKeyLastUsageCommand,
  GenerateDataKeyCommand,
  GenerateDataKeyWithoutPlaintextCommand,
  GenerateRandomCommand,
  type KMSClient,
  ListAliasesCommand,
  ReEncryptCommand,
  ScheduleKeyDeletionCommand,
} from '@aws-sdk/client-kms';
import { expect } from 'chai';
import { administrators, expectKmsError, TestServer } from '../support/server';

const run = promisify(execFile);
const MAIN = path.resolve(__dirname, '..', '..', 'src', 'main.js');
const ALICE = { accessKeyId: 'AKIAALICEAUDIT000001', secretAccessKey: 'alice-secret', accountId: '111122223333', principalArn: 'arn:aws:iam::111122223333:user/alice' };
const DAY = 86_400;

type Row = Record<string, any>;

function writeCredentials(): string {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'p11kms-creds-')), 'credentials.json');
  fs.writeFileSync(file, JSON.stringify({ accessKeys: [ALICE], identityPolicies: administrators(ALICE.principalArn) }));
  return file;
}

function trailFiles(dir: string): string[] {
  return fs.readdirSync(dir).filter((f) => /^trail-.*\.jsonl$/.test(f)).sort();
}

function readTrail(dir: string): Row[] {
  return trailFiles(dir).flatMap((f) =>
    fs
      .readFileSync(path.join(dir, f), 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('{') && l.endsWith('}'))
      .map((l) => JSON.parse(l) as Row),
  );
}

async function cli(...args: string[]): Promise<{ code: number; stdout: string }> {
  try {
    const { stdout } = await run(process.execPath, [MAIN, ...args]);
    return { code: 0, stdout };
  } catch (err) {
    const e = err as { code: number; stdout: string };
    return { code: e.code, stdout: e.stdout };
  }
}

/** A copy of the trail to damage, so every tampering case starts from the same good trail. */
function copyTrail(dir: string): string {
  const copy = fs.mkdtempSync(path.join(os.tmpdir(), 'p11kms-audit-copy-'));
  for (const f of fs.readdirSync(dir)) fs.copyFileSync(path.join(dir, f), path.join(copy, f));
  return copy;
}

function editLines(file: string, edit: (lines: string[]) => string[]): void {
  const lines = fs.readFileSync(file, 'utf8').split('\n').slice(0, -1);
  fs.writeFileSync(file, `${edit(lines).join('\n')}\n`);
}

describe('audit trail (CloudTrail records, hash chain, signed digests)', function () {
  this.timeout(60_000);
  let server: TestServer;
  let kms: KMSClient;
  let auditDir: string;
  let keyId: string;
  let keyArn: string;
  const secrets: Buffer[] = [];
  const ids: Record<string, string> = {};
  let decryptCount = 0;

  before(async () => {
    server = await TestServer.start({ auth: 'strict', credentialsFile: writeCredentials() });
    kms = server.client(ALICE);
    auditDir = path.join(server.dataDir, 'audit');
  });
  after(async () => server?.stop());

  it('writes one record per call, successful or failed, for every operation family and error class', async () => {
    const created = await kms.send(new CreateKeyCommand({ Description: 'audited' }));
    keyId = created.KeyMetadata!.KeyId!;
    keyArn = created.KeyMetadata!.Arn!;
    ids.CreateKey = created.$metadata.requestId!;
    const context = { app: 'billing', tenant: 'acme' };

    const plaintext = Buffer.from(`known plaintext ${randomUUID()}`);
    secrets.push(plaintext);
    const enc = await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: plaintext, EncryptionContext: context }));
    ids.Encrypt = enc.$metadata.requestId!;
    secrets.push(Buffer.from(enc.CiphertextBlob!));
    const dec = await kms.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, EncryptionContext: context }));
    ids.Decrypt = dec.$metadata.requestId!;
    decryptCount++;

    const dk = await kms.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256', EncryptionContext: context }));
    ids.GenerateDataKey = dk.$metadata.requestId!;
    secrets.push(Buffer.from(dk.Plaintext!), Buffer.from(dk.CiphertextBlob!));
    const dkDec = await kms.send(new DecryptCommand({ CiphertextBlob: dk.CiphertextBlob, EncryptionContext: context }));
    decryptCount++;
    secrets.push(Buffer.from(dkDec.Plaintext!));
    const dkw = await kms.send(new GenerateDataKeyWithoutPlaintextCommand({ KeyId: keyId, NumberOfBytes: 32 }));
    secrets.push(Buffer.from(dkw.CiphertextBlob!));
    const re = await kms.send(new ReEncryptCommand({ CiphertextBlob: enc.CiphertextBlob, SourceEncryptionContext: context, DestinationKeyId: keyId }));
    ids.ReEncrypt = re.$metadata.requestId!;
    secrets.push(Buffer.from(re.CiphertextBlob!));
    const random = await kms.send(new GenerateRandomCommand({ NumberOfBytes: 48 }));
    secrets.push(Buffer.from(random.Plaintext!));

    ids.CreateAlias = (await kms.send(new CreateAliasCommand({ AliasName: 'alias/audited', TargetKeyId: keyId }))).$metadata.requestId!;
    await kms.send(new ListAliasesCommand({}));
    await kms.send(new DisableKeyCommand({ KeyId: keyId }));
    await kms.send(new EnableKeyCommand({ KeyId: keyId }));
    ids.ScheduleKeyDeletion = (await kms.send(new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: 7 }))).$metadata.requestId!;
    await kms.send(new CancelKeyDeletionCommand({ KeyId: keyId }));
    await kms.send(new EnableKeyCommand({ KeyId: keyId }));

    const validation = await expectKmsError(kms.send(new GenerateRandomCommand({ NumberOfBytes: 0 })));
    expect(validation.name).to.equal('ValidationException');
    const notFound = await expectKmsError(kms.send(new DescribeKeyCommand({ KeyId: randomUUID() })));
    expect(notFound.name).to.equal('NotFoundException');
    const tampered = Buffer.from(enc.CiphertextBlob!);
    tampered[tampered.length - 1] ^= 1;
    const invalid = await expectKmsError(kms.send(new DecryptCommand({ CiphertextBlob: tampered, EncryptionContext: context })));
    expect(invalid.name).to.equal('InvalidCiphertextException');
    const unknownKey = await expectKmsError(server.client({ accessKeyId: 'AKIAUNKNOWN000000000', secretAccessKey: 'x' }).send(new DescribeKeyCommand({ KeyId: keyId })));
    expect(unknownKey.name).to.equal('UnrecognizedClientException');
    const badSignature = await expectKmsError(server.client({ ...ALICE, secretAccessKey: 'wrong' }).send(new DescribeKeyCommand({ KeyId: keyId })));
    expect(badSignature.name).to.equal('InvalidSignatureException');

    const records = readTrail(auditDir);
    const byRequest = new Map(records.filter((r) => r.requestID).map((r) => [r.requestID as string, r]));
    for (const [op, id] of Object.entries(ids)) {
      const r = byRequest.get(id);
      expect(r, op).to.not.equal(undefined);
      expect(r!.eventName).to.equal(op);
      expect(r!.eventType).to.equal('AwsApiCall');
      expect(r!.eventSource).to.equal('kms.amazonaws.com');
      expect(r!.awsRegion).to.equal('us-east-1');
      expect(r!.recipientAccountId).to.equal(ALICE.accountId);
      expect(r!.userIdentity).to.deep.equal({ type: 'IAMUser', principalId: 'alice', arn: ALICE.principalArn, accountId: ALICE.accountId, accessKeyId: ALICE.accessKeyId, userName: 'alice' });
      expect(r!.resources).to.deep.include({ accountId: ALICE.accountId, type: 'AWS::KMS::Key', ARN: keyArn });
      expect(r!.sourceIPAddress).to.equal('127.0.0.1');
      expect(r!.userAgent).to.match(/aws-sdk-js/);
      expect(r).to.include.keys('eventVersion', 'eventTime', 'eventID', 'readOnly', 'requestParameters', 'responseElements', 'sequenceNumber', 'previousRecordHash', 'recordHash');
      expect(r).to.not.have.property('errorCode');
    }
    // Members AWS always logs (developer guide, CloudTrail examples) appear even when the caller left them out.
    expect(byRequest.get(ids.Encrypt)!.requestParameters).to.deep.equal({ keyId, encryptionContext: context, encryptionAlgorithm: 'SYMMETRIC_DEFAULT' });
    expect(byRequest.get(ids.Encrypt)!.responseElements).to.equal(null);
    expect(byRequest.get(ids.Encrypt)!.readOnly).to.equal(true);
    expect(byRequest.get(ids.Decrypt)!.requestParameters).to.deep.equal({ encryptionContext: context, encryptionAlgorithm: 'SYMMETRIC_DEFAULT', keyId: keyArn });
    expect(byRequest.get(ids.ReEncrypt)!.requestParameters).to.deep.equal({
      destinationKeyId: keyId,
      sourceEncryptionContext: context,
      sourceEncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
      destinationEncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
    });
    expect(byRequest.get(ids.CreateKey)!.requestParameters).to.deep.equal({
      description: 'audited',
      keyUsage: 'ENCRYPT_DECRYPT',
      keySpec: 'SYMMETRIC_DEFAULT',
      origin: 'AWS_KMS',
      bypassPolicyLockoutSafetyCheck: false,
    });
    // GetKeyLastUsage names the CloudTrail event of the last use: this trail's record of it.
    const lastUse = (await kms.send(new GetKeyLastUsageCommand({ KeyId: keyId }))).KeyLastUsage!;
    const used = records.find((r) => r.eventID === lastUse.CloudTrailEventId);
    expect(used, lastUse.CloudTrailEventId).to.not.equal(undefined);
    expect(used).to.include({ requestID: lastUse.KmsRequestId, eventName: lastUse.Operation });
    expect(byRequest.get(ids.Decrypt)!.additionalEventData).to.have.property('keyMaterialId').that.matches(/^[0-9a-f]{64}$/);
    expect(byRequest.get(ids.GenerateDataKey)!.requestParameters).to.deep.equal({ keyId, keySpec: 'AES_256', encryptionContext: context });
    expect(byRequest.get(ids.CreateKey)!.responseElements!.keyMetadata).to.include({ keyId, arn: keyArn, keyState: 'Enabled' });
    expect(byRequest.get(ids.CreateKey)!.readOnly).to.equal(false);
    expect(byRequest.get(ids.CreateAlias)!.requestParameters).to.deep.equal({ aliasName: 'alias/audited', targetKeyId: keyId });
    expect(byRequest.get(ids.ScheduleKeyDeletion)!.responseElements).to.include({ keyId: keyArn, keyState: 'PendingDeletion', pendingWindowInDays: 7 });

    const failed = (e: unknown) => byRequest.get((e as { $metadata: { requestId: string } }).$metadata.requestId)!;
    expect(failed(validation)).to.include({ eventName: 'GenerateRandom', errorCode: 'ValidationException' });
    expect(failed(validation).errorMessage).to.match(/numberOfBytes/);
    expect(failed(notFound)).to.include({ eventName: 'DescribeKey', errorCode: 'NotFoundException' });
    expect(failed(invalid)).to.include({ eventName: 'Decrypt', errorCode: 'InvalidCiphertextException' });
    expect(failed(unknownKey)).to.include({ eventName: 'DescribeKey', errorCode: 'UnrecognizedClientException', awsRegion: 'us-east-1' });
    expect(failed(unknownKey).userIdentity).to.deep.equal({ type: 'Unknown', accessKeyId: 'AKIAUNKNOWN000000000' });
    expect(failed(badSignature)).to.include({ errorCode: 'InvalidSignatureException' });

    // The chain: consecutive sequence numbers, each linked to the one before.
    records.forEach((r, i) => {
      expect(r.sequenceNumber).to.equal(i + 1);
      if (i > 0) expect(r.previousRecordHash).to.equal(records[i - 1].recordHash);
    });
  });

  it('never records plaintexts, ciphertexts, data keys or random bytes, in the trail or the service log', () => {
    const haystacks = [...fs.readdirSync(auditDir).map((f) => fs.readFileSync(path.join(auditDir, f))), Buffer.from(server.stderr())];
    for (const secret of secrets) {
      for (const form of [secret, Buffer.from(secret.toString('base64')), Buffer.from(secret.toString('hex')), Buffer.from(secret.toString('base64url'))]) {
        for (const hay of haystacks) expect(hay.indexOf(form), `secret found as ${form.toString().slice(0, 12)}…`).to.equal(-1);
      }
    }
  });

  it('answers "who decrypted with key X" with one query command', async () => {
    const { code, stdout } = await cli('audit', 'query', '--dir', auditDir, '--event', 'Decrypt', '--key', keyId, '--from', '1d', '--json');
    expect(code).to.equal(0);
    const rows = stdout.trim().split('\n').map((l) => JSON.parse(l) as Row);
    expect(rows).to.have.length(decryptCount);
    for (const r of rows) expect(r.userIdentity.arn).to.equal(ALICE.principalArn);
    const table = await cli('audit', 'query', '--dir', auditDir, '--principal', ALICE.accessKeyId, '--error');
    expect(table.stdout).to.match(/InvalidCiphertextException/).and.to.match(/NotFoundException/).and.not.match(/\tOK\t/);
  });

  it('audit query --error false lists the calls that succeeded; another spelling of no is refused, not searched for as an error code', async () => {
    // Pre: "false" was taken as an error code no call has: an empty table and exit code 0.
    const succeeded = await cli('audit', 'query', '--dir', auditDir, '--principal', ALICE.accessKeyId, '--error', 'false');
    expect(succeeded.code).to.equal(0);
    const rows = succeeded.stdout.trim().split('\n').slice(1);
    expect(rows.length).to.be.greaterThan(0);
    for (const row of rows) expect(row.split('\t')[5], row).to.equal('OK');
    expect((await cli('audit', 'query', '--dir', auditDir, '--error', 'False')).code).to.equal(1);
  });

  describe('audit verify', () => {
    let good: string;
    let trail: string;
    const verify = (dir: string) => cli('audit', 'verify', '--dir', dir);

    before(async () => {
      await server.stop();
      good = copyTrail(auditDir);
      trail = trailFiles(good)[0];
    });

    it('passes on an untouched trail', async () => {
      const { code, stdout } = await verify(good);
      expect(stdout).to.match(/^OK: 1 file\(s\), \d+ record\(s\), 2 digest\(s\)/m);
      expect(code).to.equal(0);
    });

    it('names the file and line of an edited byte', async () => {
      const dir = copyTrail(good);
      editLines(path.join(dir, trail), (lines) => lines.map((l, i) => (i === 4 ? l.replace('"us-east-1"', '"us-east-2"') : l)));
      const { code, stdout } = await verify(dir);
      expect(code).to.equal(1);
      expect(stdout).to.include(`FAIL ${trail} line 5 sequence 5: record does not match its own recordHash (its content was changed)`);
    });

    it('names a deleted record', async () => {
      const dir = copyTrail(good);
      editLines(path.join(dir, trail), (lines) => lines.filter((_, i) => i !== 6));
      const { code, stdout } = await verify(dir);
      expect(code).to.equal(1);
      expect(stdout).to.include(`FAIL ${trail} line 7 sequence 8: record 7 is missing before this line (removed)`);
    });

    it('names a swapped pair', async () => {
      const dir = copyTrail(good);
      editLines(path.join(dir, trail), (lines) => {
        [lines[2], lines[3]] = [lines[3], lines[2]];
        return lines;
      });
      const { code, stdout } = await verify(dir);
      expect(code).to.equal(1);
      expect(stdout).to.include(`FAIL ${trail} line 3 sequence 4: records 3 and 4 are in the wrong order`);
    });

    it('names a truncated file', async () => {
      const dir = copyTrail(good);
      const file = path.join(dir, trail);
      const data = fs.readFileSync(file);
      let offset = 0;
      for (let i = 0; i < 9; i++) offset = data.indexOf(0x0a, offset) + 1;
      fs.writeFileSync(file, data.subarray(0, offset + 40));
      const { code, stdout } = await verify(dir);
      expect(code).to.equal(1);
      expect(stdout).to.include(`FAIL ${trail} line 10: file is shorter than digest`);
      expect(stdout).to.match(new RegExp(`FAIL ${trail} line 10: record is incomplete|${offset + 40} of \\d+ bytes`));
    });

    it('names an inserted record', async () => {
      const dir = copyTrail(good);
      editLines(path.join(dir, trail), (lines) => [...lines.slice(0, 6), lines[3], ...lines.slice(6)]);
      const { code, stdout } = await verify(dir);
      expect(code).to.equal(1);
      expect(stdout).to.include(`FAIL ${trail} line 7 sequence 4: record was inserted`);
    });

    it('with the anchor an earlier run printed, names digests removed from the end together with their records', async () => {
      const anchor = /latest signed digest \(for --anchor\): (\S+)/.exec((await verify(good)).stdout)![1];
      const dir = copyTrail(good);
      const [first, latest] = fs.readdirSync(dir).filter((f) => f.startsWith('digest-')).sort();
      // What one with write access can do: drop the newest digest and the records only it signed.
      fs.unlinkSync(path.join(dir, latest));
      const earlier = JSON.parse(fs.readFileSync(path.join(dir, first), 'utf8')).digest.files[0];
      fs.truncateSync(path.join(dir, trail), earlier.bytes);
      expect((await verify(dir)).code, 'a shorter trail checks out on its own').to.equal(0);
      const { code, stdout } = await cli('audit', 'verify', '--dir', dir, '--anchor', anchor);
      expect(code).to.equal(1);
      expect(stdout).to.include(`FAIL ${latest}: digest named by --anchor is missing`);
    });

    it('names a replaced digest', async () => {
      const dir = copyTrail(good);
      const digest = fs.readdirSync(dir).filter((f) => f.startsWith('digest-')).sort()[1];
      const parsed = JSON.parse(fs.readFileSync(path.join(dir, digest), 'utf8'));
      parsed.digest.files[0].recordCount += 1;
      fs.writeFileSync(path.join(dir, digest), `${JSON.stringify(parsed)}\n`);
      const { code, stdout } = await verify(dir);
      expect(code).to.equal(1);
      expect(stdout).to.include(`FAIL ${digest}: digest signature is invalid`);
    });
  });

  describe('crash and recovery', () => {
    it('keeps every answered request across a kill -9 under load and continues the chain after a torn write', async () => {
      server = await TestServer.start({ ...server.options, dataDir: server.dataDir });
      kms = server.client(ALICE);
      const answered: string[] = [];
      let stop = false;
      // Killed once this many requests were answered (a count, not a time: the machine may be slow).
      const KILL_AFTER = 40;
      let reached: () => void = () => undefined;
      const enough = new Promise<void>((r) => (reached = r));
      const worker = async () => {
        while (!stop) {
          try {
            const r = await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('load') }));
            answered.push(r.$metadata.requestId!);
            if (answered.length >= KILL_AFTER) reached();
          } catch {
            return;
          }
        }
      };
      const workers = Array.from({ length: 16 }, worker);
      await Promise.race([enough, Promise.all(workers)]);
      await server.kill();
      stop = true;
      await Promise.all(workers);
      expect(answered.length, 'the load ran until the kill').to.be.at.least(KILL_AFTER);

      const recorded = new Set(readTrail(auditDir).map((r) => r.requestID));
      expect(answered.filter((id) => !recorded.has(id))).to.deep.equal([]);

      // A power cut can leave half a record; kill -9 cannot, so make one.
      const last = path.join(auditDir, trailFiles(auditDir).at(-1)!);
      fs.appendFileSync(last, '{"eventVersion":"1.11","userIdentity":{"type":"IAMUs');

      server = await TestServer.start({ ...server.options, dataDir: server.dataDir, clockOffsetSeconds: 8 * DAY });
      await server.waitForLog(/incomplete record/);
      await server.stop();
      const { code, stdout } = await cli('audit', 'verify', '--dir', auditDir);
      expect(stdout).to.match(/NOTE .*torn by a crash, kept as evidence and acknowledged by sequence \d+/);
      expect(code, stdout).to.equal(0);
    });

    it('records key deletion by the sweeper as an AwsServiceEvent', async () => {
      server = await TestServer.start({ ...server.options, dataDir: server.dataDir, clockOffsetSeconds: 0 });
      kms = server.client(ALICE);
      const doomed = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!;
      await kms.send(new ScheduleKeyDeletionCommand({ KeyId: doomed.KeyId, PendingWindowInDays: 7 }));
      await server.stop();
      server = await TestServer.start({ ...server.options, dataDir: server.dataDir, clockOffsetSeconds: 8 * DAY });
      await server.stop();
      const deleted = readTrail(auditDir).find((r) => r.eventType === 'AwsServiceEvent' && r.eventName === 'DeleteKey');
      // As the developer guide's DeleteKey example: invoked by "AWS Internal", the key's ARN in responseElements.keyId.
      expect(deleted).to.deep.include({ eventSource: 'kms.amazonaws.com', userIdentity: { accountId: ALICE.accountId, invokedBy: 'AWS Internal' }, responseElements: { keyId: doomed.Arn } });
      expect(deleted!.resources).to.deep.equal([{ accountId: ALICE.accountId, type: 'AWS::KMS::Key', ARN: doomed.Arn }]);
      const { code, stdout } = await cli('audit', 'verify', '--dir', auditDir);
      expect(code, stdout).to.equal(0);
    });

    it('fails requests with KMSInternalException, and says why in the log, when the trail cannot be written', async () => {
      server = await TestServer.start({ ...server.options, dataDir: server.dataDir, clockOffsetSeconds: 0, env: { P11KMS_AUDIT_MAX_FILE_BYTES: '1' } });
      kms = server.client(ALICE);
      await kms.send(new DescribeKeyCommand({ KeyId: keyId }));
      // The next request must rotate into a new file, in a directory that is no longer there.
      const moved = `${auditDir}.moved`;
      fs.renameSync(auditDir, moved);
      fs.writeFileSync(auditDir, 'not a directory');
      try {
        const err = await expectKmsError(kms.send(new DescribeKeyCommand({ KeyId: keyId })));
        expect(err.name).to.equal('KMSInternalException');
        await server.waitForLog(/ENOTDIR/);
        expect(server.stderr()).to.match(/audit trail cannot be written.*|request refused: its audit record could not be written/);
        expect(server.stderr()).to.match(/ENOTDIR/);
      } finally {
        await server.kill();
        fs.unlinkSync(auditDir);
        fs.renameSync(moved, auditDir);
      }
    });
  });
});
