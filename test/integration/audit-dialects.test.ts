import * as fs from 'node:fs';
import * as path from 'node:path';
import { CreateKeyCommand } from '@aws-sdk/client-kms';
import { expect } from 'chai';
import { serverPerSuite, type TestServer } from '../support/server';

type Row = Record<string, any>;

function readTrail(dir: string): Row[] {
  return fs
    .readdirSync(dir)
    .filter((f) => /^trail-.*\.jsonl$/.test(f))
    .sort()
    .flatMap((f) =>
      fs
        .readFileSync(path.join(dir, f), 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('{') && l.endsWith('}'))
        .map((l) => JSON.parse(l) as Row),
    );
}

/** Both wire dialects write to the one trail, and each record says which dialect it came from. */
describe('audit trail across both dialects', function () {
  this.timeout(30_000);
  let server: TestServer;

  serverPerSuite({}, (started) => (server = started));

  async function huawei(action: string, body: unknown): Promise<{ status: number; json: Row; requestId: string }> {
    const res = await fetch(`${server.endpoint}/v1.0/0123456789abcdef0123456789abcdef/kms/${action}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Auth-Token': 'any-token-in-permissive-mode' },
      body: JSON.stringify(body),
    });
    return { status: res.status, json: (await res.json()) as Row, requestId: res.headers.get('x-request-id')! };
  }

  it('records Huawei calls in CloudTrail format with the dialect, action and KMS operation, without plaintext', async () => {
    const { KeyMetadata } = await server.client({ region: 'eu-de' }).send(new CreateKeyCommand({}));
    const secret = 'huawei-plaintext-that-must-not-be-recorded';
    const encrypted = await huawei('encrypt-data', { key_id: KeyMetadata!.KeyId, plain_text: secret, encryption_context: { app: 'billing' } });
    expect(encrypted.status).to.equal(200);
    const refused = await huawei('decrypt-data', { cipher_text: 'A'.repeat(188) });
    expect(refused.status).to.be.greaterThanOrEqual(400);

    const rows = readTrail(path.join(server.dataDir, 'audit'));
    const record = rows.find((r) => r.requestID === encrypted.requestId)!;
    expect(record, 'a record for the encrypt-data request').to.be.an('object');
    expect(record.eventName).to.equal('Encrypt');
    expect(record.eventSource).to.equal('kms.amazonaws.com');
    expect(record.awsRegion).to.equal('eu-de');
    expect(record.additionalEventData).to.include({ dialect: 'huawei', action: 'encrypt-data' });
    expect(record.requestParameters.encryptionContext).to.deep.equal({ app: 'billing' });
    expect(record.resources[0].ARN).to.equal(KeyMetadata!.Arn);

    const failure = rows.find((r) => r.requestID === refused.requestId)!;
    expect(failure.additionalEventData).to.include({ dialect: 'huawei', action: 'decrypt-data' });
    expect(failure.errorCode).to.equal(refused.json.error.error_code);

    const awsRecord = rows.find((r) => r.eventName === 'CreateKey')!;
    expect(awsRecord.additionalEventData.dialect).to.equal('aws-json');
    const everything = fs.readdirSync(path.join(server.dataDir, 'audit')).map((f) => fs.readFileSync(path.join(server.dataDir, 'audit', f), 'latin1')).join('');
    for (const form of [secret, Buffer.from(secret).toString('base64'), Buffer.from(secret).toString('hex')]) {
      expect(everything.includes(form), `trail contains ${form}`).to.equal(false);
    }
  });
});
