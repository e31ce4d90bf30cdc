/**
 * Start-up reads the audit digests it needs, not every digest ever written (a service under
 * load signs one a minute): a real trail in the test process, signed by the token's audit
 * signer, through clean restarts, restarts without requests, crashes before the last digests
 * were signed and a signing key rotation. After each start the trail verifies, the chain goes on
 * from the newest record, the next digest names the newest digest, and the current key's first
 * digest is found; the last start reads a handful of digests out of the ~140 written.
 */
import * as fs from 'node:fs';
// The module object itself (the star import's properties are getters): replacing its
// readFileSync reaches every module's calls.
import nodeFs = require('node:fs');
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import pino from 'pino';
import { apiCallEvent } from '../../src/audit/event';
import { listDigestFiles, readDigest } from '../../src/audit/format';
import { recoverTrail } from '../../src/audit/recovery';
import { AuditTrail } from '../../src/audit/trail';
import { verifyTrail } from '../../src/audit/verify';
import { loadConfig, loadHsmProfile } from '../../src/config/config';
import { AuditSigner } from '../../src/custody/audit-signer';
import { Token } from '../../src/custody/token';
import { readTrail } from '../support/audit-trail';
import { activeToken } from '../support/test-tokens';

function event(i: number) {
  return apiCallEvent({ dialect: 'aws-json', time: Date.now(), requestId: `request-${i}`, operation: 'GenerateRandom', region: 'us-east-1', sourceIp: '127.0.0.1', userAgent: 'test', input: { NumberOfBytes: 8 }, inputDecoded: true });
}

/** Digest files read by `fn` (fs.readFileSync of a digest-*.json). */
function digestReadsDuring<T>(fn: () => T): { result: T; reads: number } {
  const original = nodeFs.readFileSync;
  let reads = 0;
  nodeFs.readFileSync = ((file: fs.PathOrFileDescriptor, options?: unknown) => {
    if (typeof file === 'string' && /digest-\d+-[0-9TZ]+\.json$/.test(file)) reads++;
    return (original as (f: fs.PathOrFileDescriptor, o?: unknown) => unknown)(file, options);
  }) as typeof fs.readFileSync;
  try {
    return { result: fn(), reads };
  } finally {
    nodeFs.readFileSync = original;
  }
}

describe('audit trail start-up: the digests it needs, not all of them', function () {
  this.timeout(180_000);

  it('recovers as reading every digest would, through restarts, crashes and a key rotation, and reads few digests', async () => {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'p11kms-audit-startup-'));
    const dir = path.join(base, 'audit');
    const log = pino({ level: 'silent' });
    const token = Token.open(loadHsmProfile(loadConfig({ env: { P11KMS_DATA_DIR: base, P11KMS_HSM_PROFILE: activeToken().profile } })), base, log);
    const signer = await AuditSigner.open(token);
    const settings = { dir, maxFileBytes: 1 << 20, rotationSeconds: 3600, fsync: 'always' as const, unsignedMaxSeconds: 3600, unsignedMaxRecords: 10_000, signingKeyRotationDays: 0 };
    const clock = { now: () => Date.now() };
    const abandoned: AuditTrail[] = [];
    let requests = 0;
    const check = (when: string) => {
      const records = readTrail(dir);
      const newest = records.at(-1)!;
      const { result: found } = digestReadsDuring(() => recoverTrail(dir, signer.version, log));
      expect(found.head, `${when}: the chain goes on from the newest record`).to.deep.equal({ sequenceNumber: newest.sequenceNumber, recordHash: newest.recordHash });
      const digests = listDigestFiles(dir);
      expect(found.signed.lastDigest?.name, `${when}: the next digest names the newest`).to.equal(digests.at(-1)!.name);
      const firstOfKey = digests.map((d) => readDigest(dir, d.name).body).find((b) => (b.signingKeyVersion ?? 1) === signer.version);
      expect(found.signed.keySince, `${when}: the current key's first digest`).to.equal(firstOfKey ? Date.parse(firstOfKey.digestTime) : undefined);
      const report = verifyTrail({ dir, trustedKeys: signer.publicKeyPems });
      expect(report.findings.filter((f) => f.severity === 'error'), when).to.deep.equal([]);
    };
    try {
      for (let round = 0; round < 12; round++) {
        // A clean run with requests, two runs without any, each signing digests as it goes.
        let trail = await AuditTrail.open(settings, signer, clock, log);
        for (let i = 0; i < 3; i++) {
          await trail.record(event(requests++));
          await trail.digestNow('test');
        }
        await trail.close();
        for (let i = 0; i < 2; i++) await (await AuditTrail.open(settings, signer, clock, log)).close();
        // A crash: records written, the digests after the first two lost with the process.
        trail = await AuditTrail.open(settings, signer, clock, log);
        abandoned.push(trail);
        const before = new Set(listDigestFiles(dir).map((d) => d.name));
        for (let i = 0; i < 3; i++) {
          await trail.record(event(requests++));
          await trail.digestNow('test');
        }
        for (const d of listDigestFiles(dir).filter((f) => !before.has(f.name)).slice(1)) fs.rmSync(path.join(dir, d.name));
        if (round === 6) {
          trail = await AuditTrail.open(settings, signer, clock, log);
          await trail.record(event(requests++));
          await trail.rotateSigningKey('test');
          await trail.record(event(requests++));
          await trail.close();
        }
        check(`round ${round}`);
      }
      expect(signer.version, 'the key was rotated once').to.equal(2);
      const trail = await AuditTrail.open(settings, signer, clock, log);
      await trail.record(event(requests++));
      await trail.close();
      check('after the last start');
      const { reads } = digestReadsDuring(() => recoverTrail(dir, signer.version, log));
      const written = listDigestFiles(dir).length;
      expect(written, 'digests written').to.be.greaterThan(100);
      // The newest digest, what the newest files' digests say, and a binary search for the key's first.
      expect(reads, `digests read out of ${written}`).to.be.at.most(12);
    } finally {
      for (const t of abandoned) await t.close().catch(() => undefined);
      token.close();
      fs.rmSync(base, { recursive: true, force: true });
    }
  });
});
