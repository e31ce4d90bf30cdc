/**
 * The AWS CLI (v1 here, botocore underneath), unmodified, against a real p11kms process:
 * plain `aws kms ...` commands with --endpoint-url, as an operator would type them.
 */
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { serverPerSuite, type TestServer } from '../support/server';

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('AWS CLI', function () {
  this.timeout(60_000);
  let server: TestServer | undefined;
  let workDir: string;
  let env: NodeJS.ProcessEnv;

  /** Runs `aws kms <args> --endpoint-url <server> --output json`; never throws on a non-zero exit. */
  function aws(...args: string[]): Promise<CliResult> {
    return new Promise((resolve, reject) => {
      execFile(
        'aws',
        ['kms', ...args, '--endpoint-url', server!.endpoint, '--output', 'json'],
        { env, cwd: workDir, timeout: 30_000 },
        (err, stdout, stderr) => {
          if (err && typeof err.code !== 'number') return reject(err);
          resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
        },
      );
    });
  }

  /** Runs a command that must succeed and parses its JSON output ({} for none). */
  async function awsJson(...args: string[]): Promise<Record<string, any>> {
    const result = await aws(...args);
    expect(result.code, `aws kms ${args.join(' ')}\n${result.stderr}`).to.equal(0);
    return result.stdout.trim() === '' ? {} : (JSON.parse(result.stdout) as Record<string, any>);
  }

  before(async function () {
    try {
      const version = execFileSync('aws', ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      console.log(`      using ${version.trim()}`);
    } catch (err) {
      console.log(`      skipping the AWS CLI tests: \`aws --version\` failed (${(err as Error).message.split('\n')[0]})`);
      this.skip();
    }
    workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'p11kms-cli-'));
    // Only these credentials and settings: no profile, config file or instance metadata of the machine.
    env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AWS_')));
    Object.assign(env, {
      AWS_ACCESS_KEY_ID: 'AKIDCLITEST',
      AWS_SECRET_ACCESS_KEY: 'cli-test-secret',
      AWS_DEFAULT_REGION: 'us-east-1',
      AWS_CONFIG_FILE: path.join(workDir, 'no-config'),
      AWS_SHARED_CREDENTIALS_FILE: path.join(workDir, 'no-credentials'),
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_PAGER: '',
    });
  });
  serverPerSuite({}, (started) => (server = started));
  after(() => {
    if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
  });

  let keyId: string;
  let keyArn: string;
  const plaintext = Buffer.concat([Buffer.from([0x00, 0xff, 0x0a, 0x0d]), Buffer.from('cli secret\n'), randomBytes(200)]);

  it('create-key returns the metadata of an enabled symmetric key', async function () {
    const out = await awsJson('create-key', '--description', 'made by the AWS CLI');
    const meta = out.KeyMetadata;
    expect(meta.KeyId).to.match(UUID);
    keyId = meta.KeyId;
    keyArn = `arn:aws:kms:us-east-1:111122223333:key/${keyId}`;
    expect(meta.Arn).to.equal(keyArn);
    expect(meta.Description).to.equal('made by the AWS CLI');
    expect(meta.Enabled).to.equal(true);
    expect(meta.KeyState).to.equal('Enabled');
    expect(meta.KeySpec).to.equal('SYMMETRIC_DEFAULT');
    expect(meta.KeyUsage).to.equal('ENCRYPT_DECRYPT');
  });

  it('create-alias names the key', async function () {
    const result = await aws('create-alias', '--alias-name', 'alias/cli-test', '--target-key-id', keyId);
    expect(result.code, result.stderr).to.equal(0);
    expect(result.stdout.trim()).to.equal('');
    const aliases = await awsJson('list-aliases', '--key-id', keyId);
    expect(aliases.Aliases.map((a: { AliasName: string }) => a.AliasName)).to.deep.equal(['alias/cli-test']);
  });

  it('encrypt with fileb:// and --encryption-context, then decrypt gives back the exact bytes', async function () {
    fs.writeFileSync(path.join(workDir, 'plain.bin'), plaintext);
    const enc = await awsJson(
      'encrypt',
      '--key-id', 'alias/cli-test',
      '--plaintext', 'fileb://plain.bin',
      '--encryption-context', 'purpose=cli-test,team=qa',
    );
    expect(enc.KeyId).to.equal(keyArn);
    expect(enc.EncryptionAlgorithm).to.equal('SYMMETRIC_DEFAULT');
    const blob = Buffer.from(enc.CiphertextBlob as string, 'base64');
    expect(blob.includes(plaintext)).to.equal(false);
    fs.writeFileSync(path.join(workDir, 'cipher.bin'), blob);

    const dec = await awsJson('decrypt', '--ciphertext-blob', 'fileb://cipher.bin', '--encryption-context', 'team=qa,purpose=cli-test');
    expect(dec.KeyId).to.equal(keyArn);
    expect(Buffer.from(dec.Plaintext as string, 'base64').equals(plaintext)).to.equal(true);
  });

  it('decrypt with a wrong encryption context exits non-zero with InvalidCiphertextException', async function () {
    const result = await aws('decrypt', '--ciphertext-blob', 'fileb://cipher.bin', '--encryption-context', 'purpose=cli-test,team=dev');
    expect(result.code).to.not.equal(0);
    expect(result.stderr).to.include('InvalidCiphertextException');
    expect(result.stdout.trim()).to.equal('');
    const missing = await aws('decrypt', '--ciphertext-blob', 'fileb://cipher.bin');
    expect(missing.code).to.not.equal(0);
    expect(missing.stderr).to.include('InvalidCiphertextException');
  });

  it('generate-data-key returns a data key whose ciphertext decrypts to it', async function () {
    const out = await awsJson('generate-data-key', '--key-id', keyArn, '--key-spec', 'AES_256', '--encryption-context', 'file=report.pdf');
    expect(out.KeyId).to.equal(keyArn);
    const dataKey = Buffer.from(out.Plaintext as string, 'base64');
    expect(dataKey).to.have.length(32);
    fs.writeFileSync(path.join(workDir, 'datakey.bin'), Buffer.from(out.CiphertextBlob as string, 'base64'));
    const dec = await awsJson('decrypt', '--ciphertext-blob', 'fileb://datakey.bin', '--encryption-context', 'file=report.pdf', '--key-id', keyId);
    expect(Buffer.from(dec.Plaintext as string, 'base64').equals(dataKey)).to.equal(true);

    const odd = await awsJson('generate-data-key', '--key-id', 'alias/cli-test', '--number-of-bytes', '64');
    expect(Buffer.from(odd.Plaintext as string, 'base64')).to.have.length(64);
  });

  it('list-keys lists the key', async function () {
    const out = await awsJson('list-keys');
    expect(out.Keys).to.deep.include({ KeyId: keyId, KeyArn: keyArn });
  });

  it('describe-key finds the key by alias', async function () {
    const out = await awsJson('describe-key', '--key-id', 'alias/cli-test');
    expect(out.KeyMetadata.KeyId).to.equal(keyId);
    expect(out.KeyMetadata.Arn).to.equal(keyArn);
    expect(out.KeyMetadata.KeyState).to.equal('Enabled');
  });

  it('schedule-key-deletion puts the key in PendingDeletion and it can no longer encrypt', async function () {
    const before = Date.now() / 1000;
    const out = await awsJson('schedule-key-deletion', '--key-id', keyId, '--pending-window-in-days', '7');
    expect(out.KeyId).to.equal(keyArn);
    expect(out.KeyState).to.equal('PendingDeletion');
    expect(out.PendingWindowInDays).to.equal(7);
    expect(out.DeletionDate).to.be.a('number');
    expect(out.DeletionDate - before).to.be.within(7 * 86400 - 120, 7 * 86400 + 120);

    const described = await awsJson('describe-key', '--key-id', keyId);
    expect(described.KeyMetadata.KeyState).to.equal('PendingDeletion');
    expect(described.KeyMetadata.Enabled).to.equal(false);

    const refused = await aws('encrypt', '--key-id', keyId, '--plaintext', 'fileb://plain.bin');
    expect(refused.code).to.not.equal(0);
    expect(refused.stderr).to.include('KMSInvalidStateException');
  });
});
