import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { CreateKeyCommand, DescribeKeyCommand, type KMSClient } from '@aws-sdk/client-kms';
import { expect } from 'chai';
import { TestServer } from '../support/server';

const MAIN = path.resolve(__dirname, '..', '..', 'src', 'main.js');

interface Digest {
  digest: { reason: string; signingKeyVersion?: number; unsignedTailBound?: { maxSeconds: number; maxRecords: number }; chainHead: { sequenceNumber: number } };
}

/** `p11kms audit …` as a user runs it: exit code and output. */
async function p11kms(...args: string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout } = await promisify(execFile)(process.execPath, [MAIN, 'audit', ...args]);
    return { code: 0, out: stdout };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, out: `${e.stdout}${e.stderr}` };
  }
}

function digests(dir: string): Digest[] {
  return fs
    .readdirSync(dir)
    .filter((f) => /^digest-\d{6}-.*\.json$/.test(f))
    .sort()
    .map((f) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as Digest);
}

/** Waits for the trail to write a digest that `matches` (an event of the service, not a duration). */
async function digestAppears(dir: string, matches: (d: Digest) => boolean): Promise<Digest> {
  // A generous deadline only to report what was signed instead of a bare mocha timeout.
  const deadline = Date.now() + 50_000;
  for (;;) {
    const found = digests(dir).find(matches);
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`no such digest; the trail has: ${JSON.stringify(digests(dir).map((d) => [d.digest.reason, d.digest.chainHead.sequenceNumber]))}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('audit trail: bounded unsigned tail, signing key rotation', function () {
  this.timeout(60_000);
  let server: TestServer | undefined;
  afterEach(async () => server?.stop());

  async function describeKeys(kms: KMSClient, count: number): Promise<void> {
    const { KeyMetadata } = await kms.send(new CreateKeyCommand({}));
    for (let i = 1; i < count; i++) await kms.send(new DescribeKeyCommand({ KeyId: KeyMetadata!.KeyId! }));
  }

  it('signs a digest before the unsigned tail reaches its record bound, and each digest states the bound', async () => {
    server = await TestServer.start({ env: { P11KMS_AUDIT_UNSIGNED_MAX_RECORDS: '3', P11KMS_AUDIT_UNSIGNED_MAX_SECONDS: '3600' } });
    const dir = path.join(server.dataDir, 'audit');
    await describeKeys(server.client(), 7);
    const signed = await digestAppears(dir, (d) => d.digest.reason.includes('tail:records') && d.digest.chainHead.sequenceNumber >= 6);
    expect(signed.digest.unsignedTailBound).to.deep.equal({ maxSeconds: 3600, maxRecords: 3 });
    await server.stop();
    const { code, out } = await p11kms('verify', '--dir', dir);
    expect(code, out).to.equal(0);
  });

  it('signs a digest before the oldest unsigned record passes the time bound', async () => {
    server = await TestServer.start({ env: { P11KMS_AUDIT_UNSIGNED_MAX_SECONDS: '1' } });
    const dir = path.join(server.dataDir, 'audit');
    await describeKeys(server.client(), 1);
    const signed = await digestAppears(dir, (d) => d.digest.reason.includes('tail:time'));
    expect(signed.digest.chainHead.sequenceNumber).to.be.greaterThan(0);
  });

  it('audit verify reports an unsigned tail longer than the bound as an error', async () => {
    // Records stamped two hours ago by the service clock (bound: one hour, so its timer is far
    // off), then a crash before any digest signs them.
    server = await TestServer.start({ clockOffsetSeconds: -7200, env: { P11KMS_AUDIT_UNSIGNED_MAX_SECONDS: '3600' } });
    const dir = path.join(server.dataDir, 'audit');
    await describeKeys(server.client({ clockOffsetMs: -7_200_000 }), 3);
    await server.kill();
    const { code, out } = await p11kms('verify', '--dir', dir);
    expect(code, out).to.equal(1);
    expect(out).to.match(/FAIL .* 3 record\(s\) from sequence \d+ are chained but not yet covered by a signed digest, the oldest is \d+ s old, more than the 3600 s the trail allows unsigned/);
  });

  it('rotates the signing key on request and on schedule; digests name the version; verify accepts every version it trusts', async () => {
    server = await TestServer.start();
    const dir = path.join(server.dataDir, 'audit');
    await describeKeys(server.client(), 2);
    const rotated = await p11kms('rotate-key', '--dir', dir);
    expect(rotated.code, rotated.out).to.equal(0);
    expect(rotated.out).to.match(/audit signing key rotated: version 2, public key .*audit-signing-public-key-v2\.pem/);
    await describeKeys(server.client(), 2);
    await server.stop();
    // The schedule: a key older than auditSigningKeyRotationDays is replaced at start-up.
    server = await TestServer.start({ dataDir: server.dataDir, clockOffsetSeconds: 3 * 86_400, env: { P11KMS_AUDIT_SIGNING_KEY_ROTATION_DAYS: '2' } });
    await digestAppears(dir, (d) => d.digest.signingKeyVersion === 3);
    await server.stop();

    const versions = digests(dir).map((d) => d.digest.signingKeyVersion);
    expect(versions[0]).to.equal(1);
    expect(versions).to.include.members([1, 2, 3]);
    expect(digests(dir).map((d) => d.digest.reason)).to.include.members(['rotate-key-requested', 'signing-key-rotated', 'rotate-key-scheduled']);
    const all = await p11kms('verify', '--dir', dir);
    expect(all.code, all.out).to.equal(0);
    const key = (v: number) => path.join(dir, `audit-signing-public-key-v${v}.pem`);
    const explicit = await p11kms('verify', '--dir', dir, '--public-key', key(1), key(2), key(3));
    expect(explicit.code, explicit.out).to.equal(0);
    const onlyNewest = await p11kms('verify', '--dir', dir, '--public-key', key(3));
    expect(onlyNewest.code).to.equal(1);
    expect(onlyNewest.out).to.match(/digest is signed by a key not in the trust list \(version 1,/);
  });
});
