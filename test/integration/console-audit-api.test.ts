import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ListKeysCommand } from '@aws-sdk/client-kms';
import { expect } from 'chai';
import { type AuditQuery, auditGet } from '../support/audit-api';
import { readTrail } from '../support/audit-trail';
import { serverPerSuite, type TestServer } from '../support/server';

const ACCOUNT = '111122223333';
const AUDITOR = { accessKeyId: 'AKIAAUDITAPIAUDITOR1', secretAccessKey: 'auditor-secret', accountId: ACCOUNT, principalArn: `arn:aws:iam::${ACCOUNT}:user/auditor` };
/** Signs right, but no identity policy allows it p11kms:ReadAuditTrail. */
const OUTSIDER = { accessKeyId: 'AKIAAUDITAPIOUTSIDER', secretAccessKey: 'outsider-secret', accountId: ACCOUNT, principalArn: `arn:aws:iam::${ACCOUNT}:user/outsider` };

/**
 * The audit endpoint's query parameters, through a real server and real SigV4 signatures: every
 * malformed or out-of-range request is a 400 ValidationException naming the parameter (never a
 * 500, never a stalled event loop), and is itself recorded in the trail.
 */
describe('audit endpoint: query parameters', function () {
  this.timeout(120_000);
  let server: TestServer;
  /** While this file exists, a read of the trail blocks its thread (test hook, audit-read-thread.ts). */
  const readHold = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'p11kms-audit-read-hold-')), 'hold');
  serverPerSuite(
    () => {
      const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'p11kms-audit-api-')), 'credentials.json');
      fs.writeFileSync(
        file,
        JSON.stringify({
          accessKeys: [AUDITOR, OUTSIDER],
          identityPolicies: { [AUDITOR.principalArn]: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['p11kms:ReadAuditTrail', 'kms:List*'], Resource: '*' }] } },
        }),
      );
      return { auth: 'strict', credentialsFile: file, env: { NODE_ENV: 'test', P11KMS_TEST_AUDIT_READ_HOLD: readHold } };
    },
    (started) => (server = started),
  );
  before(async () => {
    // One record in the trail, so that every search below has a match to chart.
    await server.client({ accessKeyId: AUDITOR.accessKeyId, secretAccessKey: AUDITOR.secretAccessKey }).send(new ListKeysCommand({}));
  });
  const lookup = (query: Record<string, string | string[]>) => auditGet(server, AUDITOR, '/audit/events', query);
  const expectValidation = (reply: { status: number; body: Record<string, any> }, message: RegExp) => {
    expect(reply.status, JSON.stringify(reply.body)).to.equal(400);
    expect(reply.body.__type).to.equal('ValidationException');
    expect(reply.body.message).to.match(message);
  };

  it('accepts the signature in the query string (presigned URL) as well as in headers', async () => {
    const presigned = await auditGet(server, AUDITOR, '/audit/events', { eventName: 'ListKeys' }, { presign: true });
    expect(presigned.status, JSON.stringify(presigned.body)).to.equal(200);
    expect(presigned.body.events.map((e: any) => e.eventName)).to.deep.equal(['ListKeys']);
  });

  it('charts a range of millennia in at most 49 bars, and answers a range reaching the first time a Date holds', async () => {
    for (const from of ['0001-01-01T00:00:00Z', '-271821-04-20T00:00:00Z']) {
      const reply = await lookup({ from, to: '+275760-09-13T00:00:00Z', eventName: 'ListKeys' });
      expect(reply.status, `${from}: ${JSON.stringify(reply.body).slice(0, 300)}`).to.equal(200);
      expect(reply.body.matched).to.equal(1);
      expect(reply.body.summary.timeline.buckets.length).to.be.within(1, 49);
      expect(reply.body.summary.timeline.buckets.reduce((n: number, b: { calls: number }) => n + b.calls, 0)).to.equal(1);
    }
  });

  it('refuses times no Date can hold, and a range that ends before it starts', async () => {
    expectValidation(await lookup({ from: '999999999d' }), /^'from': '999999999d' is outside the range of possible times$/);
    expectValidation(await lookup({ from: `${'9'.repeat(400)}d` }), /^'from': '9+d' is outside the range of possible times$/);
    expectValidation(await lookup({ to: '+275760-09-14T00:00:00Z' }), /^'to': not a time/);
    expectValidation(await lookup({ from: '2026-01-02T00:00:00Z', to: '2026-01-01T00:00:00Z' }), /^'from' \(2026-01-02T00:00:00Z\) is later than 'to' \(2026-01-01T00:00:00Z\)$/);
  });

  it('refuses a limit that is not a plain decimal number from 1 to 1000', async () => {
    for (const limit of ['0x10', '1e3', ' 5', '-1', '0', '1001', 'abc']) {
      expectValidation(await lookup({ limit }), /at 'limit' failed to satisfy constraint: Member must be between 1 and 1000$/);
    }
    expect((await lookup({ limit: '1000' })).status).to.equal(200);
  });

  it('refuses a misspelt or unknown parameter instead of returning the unfiltered trail', async () => {
    expectValidation(await lookup({ evntName: 'Decrypt' }), /^Unknown query parameter\(s\): evntName\. Known: from, to, eventName, key, principal, error, limit$/);
    expectValidation(await auditGet(server, AUDITOR, '/audit/verify', { anchor: 'x' }), /^Unknown query parameter\(s\): anchor\. Known: none$/);
  });

  it('refuses a repeated parameter by name rather than as a bad signature', async () => {
    expectValidation(await lookup({ eventName: ['Decrypt', 'ListKeys'] }), /^Query parameter 'eventName' is given more than once/);
  });

  it('authenticates and authorises before it looks at the parameters: an unsigned or refused caller learns nothing about them', async () => {
    // Pre: a repeated parameter was refused before the signature was looked at (400 ValidationException to anyone).
    const repeated = { eventName: ['Decrypt', 'ListKeys'] };
    for (const query of [repeated, { evntName: 'Decrypt' }, { limit: '0' }, { error: 'False' }] as AuditQuery[]) {
      const unsigned = await auditGet(server, undefined, '/audit/events', query);
      expect([unsigned.status, unsigned.body.__type], `unsigned ${JSON.stringify(query)}`).to.deep.equal([403, 'MissingAuthenticationTokenException']);
      const wrongSecret = await auditGet(server, { accessKeyId: AUDITOR.accessKeyId, secretAccessKey: 'not-the-secret' }, '/audit/events', query);
      expect([wrongSecret.status, wrongSecret.body.__type], `wrong secret ${JSON.stringify(query)}`).to.deep.equal([400, 'InvalidSignatureException']);
      const outsider = await auditGet(server, OUTSIDER, '/audit/events', query);
      expect([outsider.status, outsider.body.__type], `no permission ${JSON.stringify(query)}`).to.deep.equal([400, 'AccessDeniedException']);
    }
    const unsignedVerify = await auditGet(server, undefined, '/audit/verify', { anchor: ['a', 'b'] });
    expect([unsignedVerify.status, unsignedVerify.body.__type]).to.deep.equal([403, 'MissingAuthenticationTokenException']);
    // Signed right over every value (headers or query string), the repeat is then refused by name.
    expectValidation(await auditGet(server, AUDITOR, '/audit/events', repeated, { presign: true }), /^Query parameter 'eventName' is given more than once/);
  });

  it('error=true finds failed calls, error=false the calls that succeeded, error=<code> that code; other spellings of yes and no are refused', async () => {
    // Pre: error=false was searched for as an error code "false": nothing matched, silently.
    const succeeded = await lookup({ error: 'false', limit: '1000' });
    expect(succeeded.status, JSON.stringify(succeeded.body)).to.equal(200);
    expect(succeeded.body.events.map((e: any) => e.eventName)).to.include('ListKeys');
    for (const e of succeeded.body.events) expect(e.errorCode, `${e.eventName} ${e.requestID}`).to.equal(undefined);
    const failed = await lookup({ error: 'true', limit: '1000' });
    expect(failed.body.matched).to.be.greaterThan(0);
    for (const e of failed.body.events) expect(e.errorCode, `${e.eventName} ${e.requestID}`).to.be.a('string');
    const all = await lookup({ limit: '1000' });
    // The read in hand is recorded after it answers, so each search saw the records before it.
    expect(succeeded.body.matched + failed.body.matched).to.be.at.most(all.body.matched);
    const byCode = await lookup({ error: 'ValidationException', limit: '1000' });
    expect(byCode.body.matched).to.be.greaterThan(0);
    for (const e of byCode.body.events) expect(e.errorCode).to.equal('ValidationException');
    for (const error of ['False', 'TRUE', '0', '1', 'no', 'yes']) {
      expectValidation(await lookup({ error }), new RegExp(`^'error': '${error}' is neither true, false nor an error code`));
    }
  });

  it('records each refused read in the trail with its error', async () => {
    const refused = readTrail(path.join(server.dataDir, 'audit')).filter((r) => r.eventSource === 'audit.p11kms' && r.errorCode === 'ValidationException');
    expect(refused.length).to.be.at.least(14);
    expect(refused.map((r) => r.requestParameters)).to.deep.include({ from: '999999999d' });
  });
  // Last: its ListKeys adds a record the searches above do not expect.
  it('reads the trail off the event loop, one read at a time: KMS calls are answered while reads are held; a ninth read in hand is ThrottlingException', async () => {
    // Pre: both read the trail on the event loop; with 100,000 records every KMS client waited
    // 2.6–4.1 s per search or verify.
    fs.writeFileSync(readHold, '');
    const answered: string[] = [];
    const search = lookup({ eventName: 'ListKeys' }).then((reply) => (answered.push('search'), reply));
    const verify = auditGet(server, AUDITOR, '/audit/verify').then((reply) => (answered.push('verify'), reply));
    try {
      for (let polls = 0; !fs.existsSync(`${readHold}.reading`); polls++) {
        if (polls > 3000) throw new Error('no read of the trail ever started');
        await new Promise((r) => setTimeout(r, 20));
      }
      const keys = await server.client({ accessKeyId: AUDITOR.accessKeyId, secretAccessKey: AUDITOR.secretAccessKey }).send(new ListKeysCommand({}));
      expect(keys.Keys, 'ListKeys answered while the search reads').to.be.an('array');
      expect(answered, 'audit reads answered before the ListKeys sent while they read').to.deep.equal([]);
      // Eight reads in hand (the two above and six more); the ninth is refused at once.
      const more = Array.from({ length: 7 }, () => lookup({ eventName: 'ListKeys' }));
      const refused = await Promise.race(more.map((reply) => reply.then((r) => (r.status === 200 ? new Promise<never>(() => undefined) : r))));
      expect([refused.status, refused.body.__type]).to.deep.equal([400, 'ThrottlingException']);
      fs.rmSync(readHold, { force: true });
      const replies = await Promise.all(more);
      expect(replies.map((r) => r.status).sort()).to.deep.equal([200, 200, 200, 200, 200, 200, 400]);
    } finally {
      fs.rmSync(readHold, { force: true });
      fs.rmSync(`${readHold}.reading`, { force: true });
    }
    const [searched, verified] = await Promise.all([search, verify]);
    expect(searched.status, JSON.stringify(searched.body)).to.equal(200);
    expect(searched.body.matched).to.be.greaterThan(0);
    expect(verified.status, JSON.stringify(verified.body)).to.equal(200);
    expect(verified.body.ok).to.equal(true);
    // One at a time, in the order asked.
    expect(answered).to.deep.equal(['search', 'verify']);
  });
});
