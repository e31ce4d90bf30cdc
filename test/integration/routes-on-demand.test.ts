/**
 * The routes outside the AWS JSON API (/health, /metrics, the Huawei dialect, the console,
 * unrouted requests) are built on the first request that needs them (app.ts,
 * expressRoutesOnDemand): a fresh real server whose very first requests are several of
 * those, sent at once beside AWS SDK calls, answers each of them as usual.
 */
import { CreateKeyCommand, EncryptCommand, type KMSClient } from '@aws-sdk/client-kms';
import { expect } from 'chai';
import { PROJECT } from '../support/huawei-client';
import { serverPerSuite, type TestServer } from '../support/server';

describe('routes outside the AWS JSON API, built on their first request', function () {
  this.timeout(60_000);
  let server: TestServer;
  let kms: KMSClient;
  serverPerSuite({}, (started, client) => ((server = started), (kms = client)));

  it('answers every request that arrives while they are being built, beside AWS SDK calls', async () => {
    const status = async (route: string, init: RequestInit = {}) => {
      const res = await fetch(`${server.endpoint}${route}`, { redirect: 'manual', ...init });
      return { status: res.status, body: await res.text() };
    };
    const huawei = { method: 'POST', headers: { 'content-type': 'application/json', 'x-auth-token': 'permissive-token' }, body: '{}' };
    // Pre: nothing has been sent to this server yet (the harness waits for its "listening" line only).
    const [health1, health2, metrics, listKeys, unrouted, console, created] = await Promise.all([
      status('/health'),
      status('/health'),
      status('/metrics'),
      status(`/v1.0/${PROJECT}/kms/list-keys`, huawei),
      status('/no-such-route'),
      status('/console'),
      kms.send(new CreateKeyCommand({})),
    ]);
    for (const health of [health1, health2]) {
      expect(health.status).to.equal(200);
      expect(JSON.parse(health.body)).to.include({ status: 'ok' });
    }
    expect(metrics.status).to.equal(200);
    expect(metrics.body).to.include('p11kms_');
    expect(listKeys.status, listKeys.body).to.equal(200);
    expect(JSON.parse(listKeys.body)).to.have.property('keys');
    expect(unrouted.status).to.equal(404);
    expect(JSON.parse(unrouted.body)).to.include({ __type: 'UnknownOperationException' });
    expect(console.status).to.equal(301);
    const encrypted = await kms.send(new EncryptCommand({ KeyId: created.KeyMetadata!.KeyId!, Plaintext: Buffer.from('after the first requests') }));
    expect(encrypted.CiphertextBlob?.length).to.be.greaterThan(0);
  });
});
