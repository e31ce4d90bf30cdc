/**
 * EnableKey, DisableKey, ScheduleKeyDeletion and CancelKeyDeletion: the requests that move a
 * key between states. What each state allows for every operation: key-states.test.ts; the
 * deletion itself when the waiting period ends: lifecycle.test.ts.
 */
import { randomUUID } from 'node:crypto';
import {
  CancelKeyDeletionCommand,
  CreateAliasCommand,
  DecryptCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  EnableKeyCommand,
  EncryptCommand,
  ScheduleKeyDeletionCommand,
  UpdateKeyDescriptionCommand,
} from '@aws-sdk/client-kms';
import { expect } from 'chai';
import { aliasName, arnOf, DAY_MS, keyManagementSuite, PLAINTEXT } from '../support/key-management-suite';
import { ACCOUNT } from '../support/regional-clients';
import { expectKmsError } from '../support/server';
import { ADMIN, adminStatement, denied, policy, strictServer } from '../support/strict-principals';

describe('key state changes (EnableKey, DisableKey, ScheduleKeyDeletion, CancelKeyDeletion)', function () {
  const { kms, createKey, describeKey } = keyManagementSuite();

  describe('EnableKey / DisableKey', function () {
    it('disables and re-enables a key; a disabled key cannot encrypt or decrypt', async function () {
      const md = await createKey();
      const { CiphertextBlob } = await kms().send(new EncryptCommand({ KeyId: md.KeyId, Plaintext: PLAINTEXT }));

      await kms().send(new DisableKeyCommand({ KeyId: md.KeyId }));
      const disabled = await describeKey(md.KeyId!);
      expect(disabled.KeyState).to.equal('Disabled');
      expect(disabled.Enabled).to.equal(false);

      const encErr = await expectKmsError(kms().send(new EncryptCommand({ KeyId: md.KeyId, Plaintext: PLAINTEXT })));
      expect(encErr.name).to.equal('DisabledException');
      expect(encErr.message).to.equal(`${md.Arn} is disabled.`);
      const decErr = await expectKmsError(kms().send(new DecryptCommand({ CiphertextBlob })));
      expect(decErr.name).to.equal('DisabledException');
      expect(decErr.message).to.equal(`${md.Arn} is disabled.`);

      await kms().send(new EnableKeyCommand({ KeyId: md.Arn }));
      const enabled = await describeKey(md.KeyId!);
      expect(enabled.KeyState).to.equal('Enabled');
      expect(enabled.Enabled).to.equal(true);
      const dec = await kms().send(new DecryptCommand({ CiphertextBlob }));
      expect(Buffer.from(dec.Plaintext!).equals(PLAINTEXT)).to.equal(true);
    });

    it('accepts DisableKey on a disabled key and EnableKey on an enabled key', async function () {
      const md = await createKey();
      await kms().send(new EnableKeyCommand({ KeyId: md.KeyId }));
      expect((await describeKey(md.KeyId!)).KeyState).to.equal('Enabled');
      await kms().send(new DisableKeyCommand({ KeyId: md.KeyId }));
      await kms().send(new DisableKeyCommand({ KeyId: md.KeyId }));
      expect((await describeKey(md.KeyId!)).KeyState).to.equal('Disabled');
    });

    it('answers NotFoundException for an unknown key', async function () {
      const keyId = randomUUID();
      const err = await expectKmsError(kms().send(new EnableKeyCommand({ KeyId: keyId })));
      expect(err.name).to.equal('NotFoundException');
      expect(err.message).to.equal(`Key '${arnOf('us-east-1', keyId)}' does not exist`);
    });
  });

  describe('operations that take only a key id or key ARN', function () {
    it('refuse an alias name (EnableKey, DisableKey, ScheduleKeyDeletion) and leave the key unchanged', async function () {
      const md = await createKey();
      const alias = aliasName();
      await kms().send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: md.KeyId }));

      const attempts: Array<[string, () => Promise<unknown>]> = [
        ['DisableKey', () => kms().send(new DisableKeyCommand({ KeyId: alias }))],
        ['EnableKey', () => kms().send(new EnableKeyCommand({ KeyId: alias }))],
        ['ScheduleKeyDeletion', () => kms().send(new ScheduleKeyDeletionCommand({ KeyId: alias }))],
        ['ScheduleKeyDeletion (alias ARN)', () => kms().send(new ScheduleKeyDeletionCommand({ KeyId: `arn:aws:kms:us-east-1:${ACCOUNT}:${alias}` }))],
      ];
      for (const [label, attempt] of attempts) {
        const err = await expectKmsError(attempt());
        expect(err.name, label).to.equal('NotFoundException');
        expect(err.message, label).to.include(alias);
      }
      const after = await describeKey(md.KeyId!);
      expect(after.KeyState).to.equal('Enabled');
      expect(after.DeletionDate).to.equal(undefined);
    });
  });

  describe('ScheduleKeyDeletion / CancelKeyDeletion', function () {
    it('schedules deletion in 30 days by default', async function () {
      const md = await createKey();
      const before = Date.now();
      const out = await kms().send(new ScheduleKeyDeletionCommand({ KeyId: md.KeyId }));
      const after = Date.now();
      expect(out.KeyId).to.equal(md.Arn);
      expect(out.KeyState).to.equal('PendingDeletion');
      expect(out.PendingWindowInDays).to.equal(30);
      expect(out.DeletionDate).to.be.instanceOf(Date);
      expect(out.DeletionDate!.getTime()).to.be.within(before + 30 * DAY_MS - 120_000, after + 30 * DAY_MS + 120_000);

      const described = await describeKey(md.KeyId!);
      expect(described.KeyState).to.equal('PendingDeletion');
      expect(described.Enabled).to.equal(false);
      expect(described.DeletionDate?.getTime()).to.equal(out.DeletionDate!.getTime());
    });

    it('accepts a 7-day window', async function () {
      const md = await createKey();
      const before = Date.now();
      const out = await kms().send(new ScheduleKeyDeletionCommand({ KeyId: md.Arn, PendingWindowInDays: 7 }));
      expect(out.PendingWindowInDays).to.equal(7);
      expect(out.DeletionDate!.getTime()).to.be.within(before + 7 * DAY_MS - 120_000, Date.now() + 7 * DAY_MS + 120_000);
    });

    for (const days of [6, 31]) {
      it(`rejects a ${days}-day window with ValidationException and leaves the key enabled`, async function () {
        const md = await createKey();
        const err = await expectKmsError(kms().send(new ScheduleKeyDeletionCommand({ KeyId: md.KeyId, PendingWindowInDays: days })));
        expect(err.name).to.equal('ValidationException');
        expect(err.message).to.include(String(days));
        const after = await describeKey(md.KeyId!);
        expect(after.KeyState).to.equal('Enabled');
        expect(after.DeletionDate).to.equal(undefined);
      });
    }

    it('refuses to schedule a key twice', async function () {
      const md = await createKey();
      const first = await kms().send(new ScheduleKeyDeletionCommand({ KeyId: md.KeyId }));
      const err = await expectKmsError(kms().send(new ScheduleKeyDeletionCommand({ KeyId: md.KeyId, PendingWindowInDays: 7 })));
      expect(err.name).to.equal('KMSInvalidStateException');
      expect(err.message).to.equal(`${md.Arn} is pending deletion.`);
      // The first schedule stands.
      expect((await describeKey(md.KeyId!)).DeletionDate?.getTime()).to.equal(first.DeletionDate!.getTime());
    });

    it('makes a key pending deletion unusable: Encrypt, Decrypt, EnableKey, DisableKey, UpdateKeyDescription fail', async function () {
      const md = await createKey();
      const { CiphertextBlob } = await kms().send(new EncryptCommand({ KeyId: md.KeyId, Plaintext: PLAINTEXT }));
      await kms().send(new ScheduleKeyDeletionCommand({ KeyId: md.KeyId, PendingWindowInDays: 7 }));

      const attempts: Array<[string, () => Promise<unknown>]> = [
        ['Encrypt', () => kms().send(new EncryptCommand({ KeyId: md.KeyId, Plaintext: PLAINTEXT }))],
        ['Decrypt', () => kms().send(new DecryptCommand({ CiphertextBlob }))],
        ['EnableKey', () => kms().send(new EnableKeyCommand({ KeyId: md.KeyId }))],
        ['DisableKey', () => kms().send(new DisableKeyCommand({ KeyId: md.KeyId }))],
        ['UpdateKeyDescription', () => kms().send(new UpdateKeyDescriptionCommand({ KeyId: md.KeyId, Description: 'x' }))],
      ];
      for (const [label, attempt] of attempts) {
        const err = await expectKmsError(attempt());
        expect(err.name, label).to.equal('KMSInvalidStateException');
        expect(err.message, label).to.include(md.Arn!);
        expect(err.message, label).to.include('pending deletion');
      }
      expect((await describeKey(md.KeyId!)).KeyState).to.equal('PendingDeletion');
    });

    it('cancels deletion: the key is Disabled without a DeletionDate, and can be enabled again', async function () {
      const md = await createKey();
      await kms().send(new ScheduleKeyDeletionCommand({ KeyId: md.KeyId }));
      const out = await kms().send(new CancelKeyDeletionCommand({ KeyId: md.KeyId }));
      expect(out.KeyId).to.equal(md.Arn);

      const cancelled = await describeKey(md.KeyId!);
      expect(cancelled.KeyState).to.equal('Disabled');
      expect(cancelled.Enabled).to.equal(false);
      expect(cancelled).to.not.have.property('DeletionDate');

      await kms().send(new EnableKeyCommand({ KeyId: md.KeyId }));
      const enc = await kms().send(new EncryptCommand({ KeyId: md.KeyId, Plaintext: PLAINTEXT }));
      expect(enc.KeyId).to.equal(md.Arn);
    });

    it('refuses CancelKeyDeletion on a key that is not pending deletion', async function () {
      const md = await createKey();
      const err = await expectKmsError(kms().send(new CancelKeyDeletionCommand({ KeyId: md.KeyId })));
      expect(err.name).to.equal('KMSInvalidStateException');
      expect(err.message).to.include(md.Arn!);
      expect((await describeKey(md.KeyId!)).KeyState).to.equal('Enabled');
    });

    it('schedules deletion of a disabled key', async function () {
      const md = await createKey();
      await kms().send(new DisableKeyCommand({ KeyId: md.KeyId }));
      const out = await kms().send(new ScheduleKeyDeletionCommand({ KeyId: md.KeyId, PendingWindowInDays: 30 }));
      expect(out.KeyState).to.equal('PendingDeletion');
      // Cancelling returns it to Disabled, as for any key.
      await kms().send(new CancelKeyDeletionCommand({ KeyId: md.Arn }));
      expect((await describeKey(md.KeyId!)).KeyState).to.equal('Disabled');
    });
  });
});

describe('ScheduleKeyDeletion in key policies: kms:ScheduleKeyDeletionPendingWindowInDays (strict mode)', function () {
  const { c, createKey } = strictServer();

  // AWS (ScheduleKeyDeletion, PendingWindowInDays): "You can use the
  // kms:ScheduleKeyDeletionPendingWindowInDays condition key to further constrain the values
  // that principals can specify in the PendingWindowInDays parameter."
  it('a Deny on windows under 30 days refuses a 7-day window and lets a 30-day one through', async function () {
    const md = await createKey({
      Policy: policy(adminStatement, {
        Effect: 'Deny',
        Principal: '*',
        Action: 'kms:ScheduleKeyDeletion',
        Condition: { NumericLessThan: { 'kms:ScheduleKeyDeletionPendingWindowInDays': '30' } },
      }),
    });
    const short = await expectKmsError(c.ADMIN.send(new ScheduleKeyDeletionCommand({ KeyId: md.KeyId, PendingWindowInDays: 7 })));
    expect([short.name, short.message]).to.deep.equal(['AccessDeniedException', denied(ADMIN, 'kms:ScheduleKeyDeletion', md.Arn!, 'with an explicit deny in a resource-based policy')]);
    expect((await c.ADMIN.send(new DescribeKeyCommand({ KeyId: md.KeyId }))).KeyMetadata!.KeyState).to.equal('Enabled');

    const out = await c.ADMIN.send(new ScheduleKeyDeletionCommand({ KeyId: md.KeyId, PendingWindowInDays: 30 }));
    expect([out.KeyState, out.PendingWindowInDays]).to.deep.equal(['PendingDeletion', 30]);
  });

  it('an Allow only for windows of at least 14 days: 14 is allowed, 13 is not', async function () {
    const md = await createKey({
      Policy: policy(
        { Sid: 'admin', Principal: { AWS: ADMIN.principalArn }, NotAction: 'kms:ScheduleKeyDeletion' },
        {
          Sid: 'long-windows',
          Principal: { AWS: ADMIN.principalArn },
          Action: 'kms:ScheduleKeyDeletion',
          Condition: { NumericGreaterThanEquals: { 'kms:ScheduleKeyDeletionPendingWindowInDays': '14' } },
        },
      ),
    });
    const short = await expectKmsError(c.ADMIN.send(new ScheduleKeyDeletionCommand({ KeyId: md.KeyId, PendingWindowInDays: 13 })));
    expect([short.name, short.message]).to.deep.equal(['AccessDeniedException', denied(ADMIN, 'kms:ScheduleKeyDeletion', md.Arn!)]);
    const out = await c.ADMIN.send(new ScheduleKeyDeletionCommand({ KeyId: md.KeyId, PendingWindowInDays: 14 }));
    expect(out.PendingWindowInDays).to.equal(14);
  });
});
