import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  CancelKeyDeletionCommand,
  CreateAliasCommand,
  CreateGrantCommand,
  CreateKeyCommand,
  DecryptCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  EnableKeyCommand,
  EnableKeyRotationCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  GenerateMacCommand,
  GetKeyPolicyCommand,
  GetKeyRotationStatusCommand,
  GetPublicKeyCommand,
  type KMSClient,
  ListKeyRotationsCommand,
  ListGrantsCommand,
  ListKeysCommand,
  ListResourceTagsCommand,
  PutKeyPolicyCommand,
  ReplicateKeyCommand,
  RetireGrantCommand,
  RevokeGrantCommand,
  RotateKeyOnDemandCommand,
  ScheduleKeyDeletionCommand,
  SignCommand,
  TagResourceCommand,
  UpdateKeyDescriptionCommand,
  UpdatePrimaryRegionCommand,
  VerifyCommand,
  VerifyMacCommand,
} from '@aws-sdk/client-kms';
import { expect } from 'chai';
import { queryTrail } from '../../src/audit/query';
import { expectKmsError, serverPerSuite, TestServer } from '../support/server';
import { listTokenObjects } from '../support/token-tool';

const ACCOUNT = '111122223333';
const EAST = 'us-east-1';
const WEST = 'us-west-2';
const EU = 'eu-west-1';
const DAY_S = 24 * 60 * 60;
const text = (s: string) => Buffer.from(s, 'utf8');
const arnIn = (region: string, keyId: string) => `arn:aws:kms:${region}:${ACCOUNT}:key/${keyId}`;

describe('multi-Region keys (real server, real token)', function () {
  let server: TestServer;
  let kms: Record<string, KMSClient>;

  serverPerSuite({}, (started) => {
    server = started;
    kms = { [EAST]: server.client({ region: EAST }), [WEST]: server.client({ region: WEST }), [EU]: server.client({ region: EU }) };
  });

  async function newMrk(region = EAST): Promise<string> {
    const { KeyMetadata } = await kms[region].send(new CreateKeyCommand({ MultiRegion: true, Description: 'primary' }));
    return KeyMetadata!.KeyId!;
  }

  it('CreateKey MultiRegion=true makes an mrk- primary with its MultiRegionConfiguration', async () => {
    const { KeyMetadata: m } = await kms[EAST].send(new CreateKeyCommand({ MultiRegion: true }));
    expect(m!.KeyId).to.match(/^mrk-[0-9a-f]{32}$/);
    expect(m!.Arn).to.equal(arnIn(EAST, m!.KeyId!));
    expect(m!.MultiRegion).to.equal(true);
    expect(m!.MultiRegionConfiguration).to.deep.equal({ MultiRegionKeyType: 'PRIMARY', PrimaryKey: { Arn: m!.Arn, Region: EAST }, ReplicaKeys: [] });
    const single = await kms[EAST].send(new CreateKeyCommand({}));
    expect(single.KeyMetadata!.MultiRegion).to.equal(false);
    expect(single.KeyMetadata!.MultiRegionConfiguration).to.equal(undefined);
  });

  it('ReplicateKey into two regions: same key id, replica answered in Creating, then Enabled; every region describes and lists the key as AWS does', async () => {
    const keyId = await newMrk();
    const out = await kms[EAST].send(new ReplicateKeyCommand({ KeyId: keyId, ReplicaRegion: WEST, Description: 'west copy', Tags: [{ TagKey: 'site', TagValue: 'west' }] }));
    const r = out.ReplicaKeyMetadata!;
    expect(r).to.include({ KeyId: keyId, Arn: arnIn(WEST, keyId), KeyState: 'Creating', Enabled: false, Description: 'west copy', MultiRegion: true });
    expect(r.MultiRegionConfiguration!.MultiRegionKeyType).to.equal('REPLICA');
    expect(r.MultiRegionConfiguration!.PrimaryKey).to.deep.equal({ Arn: arnIn(EAST, keyId), Region: EAST });
    expect(JSON.parse(out.ReplicaPolicy!).Statement[0].Principal.AWS).to.equal(`arn:aws:iam::${ACCOUNT}:root`);
    expect(out.ReplicaTags).to.deep.equal([{ TagKey: 'site', TagValue: 'west' }]);
    await kms[EAST].send(new ReplicateKeyCommand({ KeyId: arnIn(EAST, keyId), ReplicaRegion: EU }));

    const replicas = [
      { Arn: arnIn(EU, keyId), Region: EU },
      { Arn: arnIn(WEST, keyId), Region: WEST },
    ];
    for (const [region, type, description] of [
      [EAST, 'PRIMARY', 'primary'],
      [WEST, 'REPLICA', 'west copy'],
      [EU, 'REPLICA', ''],
    ] as const) {
      const { KeyMetadata: m } = await kms[region].send(new DescribeKeyCommand({ KeyId: keyId }));
      expect(m).to.include({ KeyId: keyId, Arn: arnIn(region, keyId), KeyState: 'Enabled', Enabled: true, Description: description, MultiRegion: true });
      expect(m!.MultiRegionConfiguration).to.deep.equal({ MultiRegionKeyType: type, PrimaryKey: { Arn: arnIn(EAST, keyId), Region: EAST }, ReplicaKeys: replicas });
      const { Keys } = await kms[region].send(new ListKeysCommand({ Limit: 1000 }));
      expect(Keys).to.deep.include({ KeyId: keyId, KeyArn: arnIn(region, keyId) });
    }
    const other = server.client({ region: 'ap-southeast-2' });
    expect((await expectKmsError(other.send(new DescribeKeyCommand({ KeyId: keyId })))).message).to.equal(`Key '${arnIn('ap-southeast-2', keyId)}' does not exist`);
  });

  it('ciphertexts of any region decrypt in every other region of the key', async () => {
    const keyId = await newMrk();
    for (const region of [WEST, EU]) await kms[EAST].send(new ReplicateKeyCommand({ KeyId: keyId, ReplicaRegion: region }));
    for (const from of [EAST, WEST, EU]) {
      const { CiphertextBlob, KeyId } = await kms[from].send(new EncryptCommand({ KeyId: keyId, Plaintext: text(`from ${from}`), EncryptionContext: { app: 'mrk' } }));
      expect(KeyId).to.equal(arnIn(from, keyId));
      for (const to of [EAST, WEST, EU]) {
        const out = await kms[to].send(new DecryptCommand({ CiphertextBlob, EncryptionContext: { app: 'mrk' } }));
        expect(Buffer.from(out.Plaintext!).toString(), `${from} → ${to}`).to.equal(`from ${from}`);
        expect(out.KeyId).to.equal(arnIn(to, keyId));
      }
    }
    const dataKey = await kms[EU].send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256' }));
    const back = await kms[EAST].send(new DecryptCommand({ CiphertextBlob: dataKey.CiphertextBlob }));
    expect(Buffer.from(back.Plaintext!).equals(Buffer.from(dataKey.Plaintext!))).to.equal(true);
    // A region without a replica cannot open them, as for any key of another region.
    const { CiphertextBlob } = await kms[EAST].send(new EncryptCommand({ KeyId: keyId, Plaintext: text('x') }));
    const elsewhere = server.client({ region: 'ca-central-1' });
    expect((await expectKmsError(elsewhere.send(new DecryptCommand({ CiphertextBlob })))).name).to.equal('InvalidCiphertextException');
  });

  it('asymmetric and HMAC multi-Region keys: one key pair or secret in the token serves every region', async () => {
    const sign = (await kms[EAST].send(new CreateKeyCommand({ MultiRegion: true, KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }))).KeyMetadata!.KeyId!;
    const mac = (await kms[EAST].send(new CreateKeyCommand({ MultiRegion: true, KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' }))).KeyMetadata!.KeyId!;
    for (const keyId of [sign, mac]) await kms[EAST].send(new ReplicateKeyCommand({ KeyId: keyId, ReplicaRegion: WEST }));
    const message = text('signed in the west');
    const { Signature } = await kms[WEST].send(new SignCommand({ KeyId: sign, Message: message, SigningAlgorithm: 'ECDSA_SHA_256' }));
    expect((await kms[EAST].send(new VerifyCommand({ KeyId: sign, Message: message, Signature, SigningAlgorithm: 'ECDSA_SHA_256' }))).SignatureValid).to.equal(true);
    const publicKeys = await Promise.all([EAST, WEST].map(async (r) => Buffer.from((await kms[r].send(new GetPublicKeyCommand({ KeyId: sign }))).PublicKey!).toString('hex')));
    expect(publicKeys[0]).to.equal(publicKeys[1]);
    const { Mac } = await kms[EAST].send(new GenerateMacCommand({ KeyId: mac, Message: message, MacAlgorithm: 'HMAC_SHA_256' }));
    expect((await kms[WEST].send(new VerifyMacCommand({ KeyId: mac, Message: message, Mac, MacAlgorithm: 'HMAC_SHA_256' }))).MacValid).to.equal(true);
    // A key pair is two objects (private and public), an HMAC key one: no more for the replica.
    const labels = listTokenObjects(server.dataDir).map((o) => o.label);
    expect(labels.filter((l) => l === `p11kms:${sign}:v1`)).to.have.length(2);
    expect(labels.filter((l) => l === `p11kms:${mac}:v1`)).to.have.length(1);
  });

  it('a replica has its own description, tags, policy, aliases and enabled state', async () => {
    const keyId = await newMrk();
    await kms[EAST].send(new ReplicateKeyCommand({ KeyId: keyId, ReplicaRegion: WEST }));
    await kms[WEST].send(new UpdateKeyDescriptionCommand({ KeyId: keyId, Description: 'only west' }));
    await kms[WEST].send(new TagResourceCommand({ KeyId: keyId, Tags: [{ TagKey: 'region', TagValue: 'west' }] }));
    const westPolicy = JSON.stringify({ Version: '2012-10-17', Statement: [{ Sid: 'west', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` }, Action: 'kms:*', Resource: '*' }] });
    await kms[WEST].send(new PutKeyPolicyCommand({ KeyId: keyId, PolicyName: 'default', Policy: westPolicy }));
    await kms[WEST].send(new CreateAliasCommand({ AliasName: 'alias/mrk-west', TargetKeyId: keyId }));
    await kms[WEST].send(new DisableKeyCommand({ KeyId: keyId }));

    expect((await kms[EAST].send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata).to.include({ Description: 'primary', KeyState: 'Enabled' });
    expect((await kms[EAST].send(new ListResourceTagsCommand({ KeyId: keyId }))).Tags).to.deep.equal([]);
    expect((await kms[EAST].send(new GetKeyPolicyCommand({ KeyId: keyId }))).Policy).to.not.contain('"west"');
    expect((await kms[WEST].send(new GetKeyPolicyCommand({ KeyId: keyId }))).Policy).to.contain('"west"');
    expect((await expectKmsError(kms[EAST].send(new DescribeKeyCommand({ KeyId: 'alias/mrk-west' })))).name).to.equal('NotFoundException');
    expect((await kms[WEST].send(new DescribeKeyCommand({ KeyId: 'alias/mrk-west' }))).KeyMetadata).to.include({ Description: 'only west', KeyState: 'Disabled' });

    const { CiphertextBlob } = await kms[EAST].send(new EncryptCommand({ KeyId: keyId, Plaintext: text('still usable in the east') }));
    expect((await expectKmsError(kms[WEST].send(new DecryptCommand({ CiphertextBlob })))).name).to.equal('DisabledException');
    await kms[WEST].send(new EnableKeyCommand({ KeyId: keyId }));
    expect(Buffer.from((await kms[WEST].send(new DecryptCommand({ CiphertextBlob }))).Plaintext!).toString()).to.equal('still usable in the east');
  });

  it('grants are regional: a replica\'s grant is not listed, revoked or retired through another region of the key', async () => {
    const keyId = await newMrk();
    await kms[EAST].send(new ReplicateKeyCommand({ KeyId: keyId, ReplicaRegion: WEST }));
    const grantee = `arn:aws:iam::${ACCOUNT}:user/west-app`;
    const { GrantId } = await kms[WEST].send(new CreateGrantCommand({ KeyId: keyId, GranteePrincipal: grantee, RetiringPrincipal: grantee, Operations: ['Decrypt'] }));
    expect((await kms[EAST].send(new ListGrantsCommand({ KeyId: keyId }))).Grants).to.deep.equal([]);
    for (const call of [
      () => kms[EAST].send(new RevokeGrantCommand({ KeyId: keyId, GrantId })),
      () => kms[EAST].send(new RetireGrantCommand({ KeyId: arnIn(EAST, keyId), GrantId })),
    ]) {
      const err = await expectKmsError(call());
      expect([err.name, err.message]).to.deep.equal(['NotFoundException', `Grant ID ${GrantId} not found`]);
    }
    expect((await kms[WEST].send(new ListGrantsCommand({ KeyId: keyId }))).Grants!.map((g) => g.GrantId)).to.deep.equal([GrantId]);
    await kms[WEST].send(new RevokeGrantCommand({ KeyId: keyId, GrantId }));
    expect((await kms[WEST].send(new ListGrantsCommand({ KeyId: keyId }))).Grants).to.deep.equal([]);
  });

  it('refusals: replicas are not primaries, one key per region, no imported material, rotation on the primary only', async () => {
    const keyId = await newMrk();
    await kms[EAST].send(new ReplicateKeyCommand({ KeyId: keyId, ReplicaRegion: WEST }));
    const cases: Array<[() => Promise<unknown>, string, string | RegExp]> = [
      [() => kms[WEST].send(new ReplicateKeyCommand({ KeyId: keyId, ReplicaRegion: EU })), 'UnsupportedOperationException', `${arnIn(WEST, keyId)} is not a multi-region primary key.`],
      [() => kms[EAST].send(new ReplicateKeyCommand({ KeyId: keyId, ReplicaRegion: WEST })), 'AlreadyExistsException', `Key '${arnIn(WEST, keyId)}' already exists`],
      [() => kms[EAST].send(new ReplicateKeyCommand({ KeyId: keyId, ReplicaRegion: EAST })), 'AlreadyExistsException', /already exists: it is the primary key/],
      [() => kms[EAST].send(new ReplicateKeyCommand({ KeyId: keyId, ReplicaRegion: 'not a region' })), 'ValidationException', /replicaRegion/],
      [() => kms[WEST].send(new RotateKeyOnDemandCommand({ KeyId: keyId })), 'UnsupportedOperationException', `${arnIn(WEST, keyId)} is not a multi-region primary key.`],
      [() => kms[WEST].send(new EnableKeyRotationCommand({ KeyId: keyId })), 'UnsupportedOperationException', `${arnIn(WEST, keyId)} is not a multi-region primary key.`],
      [() => kms[WEST].send(new UpdatePrimaryRegionCommand({ KeyId: keyId, PrimaryRegion: EAST })), 'UnsupportedOperationException', `${arnIn(WEST, keyId)} is not a multi-region primary key.`],
      [() => kms[EAST].send(new UpdatePrimaryRegionCommand({ KeyId: keyId, PrimaryRegion: EU })), 'NotFoundException', `Key '${arnIn(EU, keyId)}' does not exist`],
      [() => kms[EAST].send(new CreateKeyCommand({ MultiRegion: true, Origin: 'EXTERNAL' })), 'UnsupportedOperationException', /Origin EXTERNAL/],
    ];
    const single = (await kms[EAST].send(new CreateKeyCommand({}))).KeyMetadata!;
    cases.push([() => kms[EAST].send(new ReplicateKeyCommand({ KeyId: single.KeyId, ReplicaRegion: WEST })), 'UnsupportedOperationException', `${single.Arn} is not a multi-region primary key.`]);
    for (const [call, name, message] of cases) {
      const err = await expectKmsError(call());
      expect(err.name, err.message).to.equal(name);
      if (typeof message === 'string') expect(err.message).to.equal(message);
      else expect(err.message).to.match(message);
    }
    await kms[WEST].send(new DisableKeyCommand({ KeyId: keyId }));
    expect((await expectKmsError(kms[EAST].send(new UpdatePrimaryRegionCommand({ KeyId: keyId, PrimaryRegion: WEST })))).name).to.equal('DisabledException');
    await kms[EAST].send(new DisableKeyCommand({ KeyId: keyId }));
    expect((await expectKmsError(kms[EAST].send(new ReplicateKeyCommand({ KeyId: keyId, ReplicaRegion: EU })))).name).to.equal('DisabledException');
  });

  it('rotating the primary rotates every region: one shared new version, old ciphertexts keep decrypting everywhere', async () => {
    const keyId = await newMrk();
    await kms[EAST].send(new ReplicateKeyCommand({ KeyId: keyId, ReplicaRegion: WEST }));
    const before = await kms[WEST].send(new EncryptCommand({ KeyId: keyId, Plaintext: text('v1') }));
    await kms[EAST].send(new EnableKeyRotationCommand({ KeyId: keyId, RotationPeriodInDays: 90 }));
    expect(await kms[WEST].send(new GetKeyRotationStatusCommand({ KeyId: keyId }))).to.include({ KeyRotationEnabled: true, RotationPeriodInDays: 90 });
    await kms[EAST].send(new RotateKeyOnDemandCommand({ KeyId: keyId }));

    const east = (await kms[EAST].send(new ListKeyRotationsCommand({ KeyId: keyId, IncludeKeyMaterial: 'ALL_KEY_MATERIAL' }))).Rotations!;
    const west = (await kms[WEST].send(new ListKeyRotationsCommand({ KeyId: keyId, IncludeKeyMaterial: 'ALL_KEY_MATERIAL' }))).Rotations!;
    expect(east.length).to.equal(2);
    expect(west.map((r) => r.KeyMaterialId)).to.deep.equal(east.map((r) => r.KeyMaterialId));
    const current = (await kms[EAST].send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!.CurrentKeyMaterialId;
    expect((await kms[WEST].send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!.CurrentKeyMaterialId).to.equal(current);

    const after = await kms[WEST].send(new EncryptCommand({ KeyId: keyId, Plaintext: text('v2') }));
    const opened = await kms[EAST].send(new DecryptCommand({ CiphertextBlob: after.CiphertextBlob }));
    expect(opened.KeyMaterialId).to.equal(current);
    expect(Buffer.from((await kms[EAST].send(new DecryptCommand({ CiphertextBlob: before.CiphertextBlob }))).Plaintext!).toString()).to.equal('v1');
    // One token object per material version, whatever the number of regions.
    expect(listTokenObjects(server.dataDir).filter((o) => o.label.startsWith(`p11kms:${keyId}:`)).map((o) => o.label).sort()).to.deep.equal([`p11kms:${keyId}:v1`, `p11kms:${keyId}:v2`]);
  });

  it('UpdatePrimaryRegion swaps primary and replica in every region; rotation and replication follow the primary', async () => {
    const keyId = await newMrk();
    for (const region of [WEST, EU]) await kms[EAST].send(new ReplicateKeyCommand({ KeyId: keyId, ReplicaRegion: region }));
    expect(await kms[EAST].send(new UpdatePrimaryRegionCommand({ KeyId: keyId, PrimaryRegion: WEST }))).to.not.have.property('KeyId');
    const expected = { Arn: arnIn(WEST, keyId), Region: WEST };
    for (const [region, type] of [
      [EAST, 'REPLICA'],
      [WEST, 'PRIMARY'],
      [EU, 'REPLICA'],
    ] as const) {
      const c = (await kms[region].send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!.MultiRegionConfiguration!;
      expect(c.MultiRegionKeyType, region).to.equal(type);
      expect(c.PrimaryKey).to.deep.equal(expected);
      expect(c.ReplicaKeys!.map((k) => k.Region)).to.deep.equal([EU, EAST].sort());
    }
    expect((await expectKmsError(kms[EAST].send(new RotateKeyOnDemandCommand({ KeyId: keyId })))).name).to.equal('UnsupportedOperationException');
    await kms[WEST].send(new RotateKeyOnDemandCommand({ KeyId: keyId }));
    await kms[WEST].send(new ReplicateKeyCommand({ KeyId: keyId, ReplicaRegion: 'ap-southeast-2' }));
    const far = server.client({ region: 'ap-southeast-2' });
    const { CiphertextBlob } = await far.send(new EncryptCommand({ KeyId: keyId, Plaintext: text('far') }));
    expect(Buffer.from((await kms[EAST].send(new DecryptCommand({ CiphertextBlob }))).Plaintext!).toString()).to.equal('far');
  });

  it('several clients replicating one key into one region at once: exactly one wins, the others get AlreadyExistsException', async () => {
    const keyId = await newMrk();
    const clients = Array.from({ length: 8 }, () => server.client({ region: EAST }));
    const results = await Promise.allSettled(clients.map((c) => c.send(new ReplicateKeyCommand({ KeyId: keyId, ReplicaRegion: EU }))));
    expect(results.filter((r) => r.status === 'fulfilled')).to.have.length(1);
    const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => (r.reason as Error).name);
    expect(failures).to.deep.equal(Array(7).fill('AlreadyExistsException'));
    const { KeyMetadata } = await kms[EAST].send(new DescribeKeyCommand({ KeyId: keyId }));
    expect(KeyMetadata!.MultiRegionConfiguration!.ReplicaKeys).to.deep.equal([{ Arn: arnIn(EU, keyId), Region: EU }]);
  });

  it('the trail records ReplicateKey in the primary region and CreateKey in the replica region', async () => {
    const keyId = await newMrk();
    await kms[EAST].send(new ReplicateKeyCommand({ KeyId: keyId, ReplicaRegion: WEST }));
    const records = [...queryTrail(path.join(server.dataDir, 'audit'), { key: keyId })].filter((r) => r.eventName !== 'CreateKey' || r.awsRegion === WEST);
    const replicate = records.find((r) => r.eventName === 'ReplicateKey');
    const created = records.find((r) => r.eventName === 'CreateKey' && r.awsRegion === WEST);
    expect(replicate?.awsRegion).to.equal(EAST);
    expect((replicate?.resources as Array<{ ARN: string }>).map((r) => r.ARN).sort()).to.deep.equal([arnIn(EAST, keyId), arnIn(WEST, keyId)]);
    expect(created?.requestID).to.equal(replicate?.requestID);
    expect((created?.resources as Array<{ ARN: string }>)[0].ARN).to.equal(arnIn(WEST, keyId));
  });

  it('the trail records UpdatePrimaryRegion in both regions: the former primary\'s and, invoked by KMS, the new primary\'s', async () => {
    const keyId = await newMrk();
    await kms[EAST].send(new ReplicateKeyCommand({ KeyId: keyId, ReplicaRegion: WEST }));
    await kms[EAST].send(new UpdatePrimaryRegionCommand({ KeyId: keyId, PrimaryRegion: WEST }));
    const records = [...queryTrail(path.join(server.dataDir, 'audit'), { key: keyId })].filter((r) => r.eventName === 'UpdatePrimaryRegion');
    expect(records.map((r) => r.awsRegion)).to.deep.equal([EAST, WEST]);
    const [former, added] = records;
    expect(former.requestParameters).to.deep.equal({ keyId, primaryRegion: WEST });
    expect((former.resources as Array<{ ARN: string }>).map((r) => r.ARN)).to.deep.equal([arnIn(EAST, keyId)]);
    expect(added.requestID).to.equal(former.requestID);
    expect(added.eventID).to.not.equal(former.eventID);
    expect((added.userIdentity as { invokedBy?: string }).invokedBy).to.equal('kms.amazonaws.com');
    expect(added.requestParameters).to.deep.equal({ keyId: arnIn(WEST, keyId), primaryRegion: WEST });
    expect(added.responseElements).to.deep.equal({ keyId: arnIn(WEST, keyId) });
  });
});

describe('multi-Region key deletion order, restarts and token objects', function () {
  it('a primary with replicas waits in PendingReplicaDeletion; material is destroyed only with the last region', async () => {
    let server = await TestServer.start();
    try {
      let east = server.client({ region: EAST });
      let west = server.client({ region: WEST });
      const keyId = (await east.send(new CreateKeyCommand({ MultiRegion: true }))).KeyMetadata!.KeyId!;
      await east.send(new ReplicateKeyCommand({ KeyId: keyId, ReplicaRegion: WEST }));
      await east.send(new RotateKeyOnDemandCommand({ KeyId: keyId }));
      await east.send(new EnableKeyRotationCommand({ KeyId: keyId }));
      const rotationEnabled = async () => (await east.send(new GetKeyRotationStatusCommand({ KeyId: keyId }))).KeyRotationEnabled;
      const objects = () => listTokenObjects(server.dataDir).filter((o) => o.label.startsWith(`p11kms:${keyId}:`)).length;
      expect(objects()).to.equal(2);
      const { CiphertextBlob } = await east.send(new EncryptCommand({ KeyId: keyId, Plaintext: text('kept by the replica') }));

      const scheduled = await east.send(new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: 7 }));
      expect(scheduled).to.include({ KeyId: arnIn(EAST, keyId), KeyState: 'PendingReplicaDeletion', PendingWindowInDays: 7 });
      expect(scheduled.DeletionDate).to.equal(undefined);
      const waiting = (await east.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!;
      expect(waiting).to.include({ KeyState: 'PendingReplicaDeletion', Enabled: false, PendingDeletionWindowInDays: 7 });
      expect(waiting.DeletionDate).to.equal(undefined);
      // Scheduled for deletion, the primary is not rotated: its status is false, as for PendingDeletion.
      expect(await rotationEnabled()).to.equal(false);
      expect((await expectKmsError(east.send(new EncryptCommand({ KeyId: keyId, Plaintext: text('no') })))).message).to.equal(`${arnIn(EAST, keyId)} is pending replica deletion.`);
      expect((await expectKmsError(east.send(new ReplicateKeyCommand({ KeyId: keyId, ReplicaRegion: EU })))).name).to.equal('KMSInvalidStateException');
      // Cancelling works from PendingReplicaDeletion too, and leaves the key disabled (AWS).
      await east.send(new CancelKeyDeletionCommand({ KeyId: keyId }));
      expect((await east.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!.KeyState).to.equal('Disabled');
      expect(await rotationEnabled()).to.equal(true);
      await east.send(new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: 7 }));
      await west.send(new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: 7 }));

      // Eight days later the replica is gone; the primary's own 7 days start then; the material stays.
      server = await server.restart({ clockOffsetSeconds: 8 * DAY_S });
      await server.waitForLog(/key deleted at the end of its waiting period/);
      east = server.client({ region: EAST, clockOffsetMs: 8 * DAY_S * 1000 });
      west = server.client({ region: WEST, clockOffsetMs: 8 * DAY_S * 1000 });
      expect((await expectKmsError(west.send(new DescribeKeyCommand({ KeyId: keyId })))).name).to.equal('NotFoundException');
      const pending = (await east.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!;
      expect(pending.KeyState).to.equal('PendingDeletion');
      expect(pending.MultiRegionConfiguration!.ReplicaKeys).to.deep.equal([]);
      expect(pending.DeletionDate!.getTime() - Date.now()).to.be.within(14 * DAY_S * 1000, 16 * DAY_S * 1000);
      expect(objects()).to.equal(2);
      await east.send(new CancelKeyDeletionCommand({ KeyId: keyId }));
      await east.send(new EnableKeyCommand({ KeyId: keyId }));
      expect(Buffer.from((await east.send(new DecryptCommand({ CiphertextBlob }))).Plaintext!).toString()).to.equal('kept by the replica');

      // Deleting the primary last destroys the material.
      await east.send(new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: 7 }));
      server = await server.restart({ clockOffsetSeconds: 16 * DAY_S });
      await server.waitForLog(/key deleted at the end of its waiting period/);
      expect(objects()).to.equal(0);
    } finally {
      await server.stop();
    }
  });

  it('replicas and the primary region survive a restart; the former primary, deleted first, leaves the material to the new one', async () => {
    let server = await TestServer.start();
    try {
      const east = server.client({ region: EAST });
      const keyId = (await east.send(new CreateKeyCommand({ MultiRegion: true }))).KeyMetadata!.KeyId!;
      await east.send(new ReplicateKeyCommand({ KeyId: keyId, ReplicaRegion: WEST, Description: 'persisted' }));
      await east.send(new UpdatePrimaryRegionCommand({ KeyId: keyId, PrimaryRegion: WEST }));
      const { CiphertextBlob } = await east.send(new EncryptCommand({ KeyId: keyId, Plaintext: text('across restarts') }));
      const objects = () => listTokenObjects(server.dataDir).filter((o) => o.label.startsWith(`p11kms:${keyId}:`)).length;
      server = await server.restart();
      let west = server.client({ region: WEST });
      const m = (await west.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!;
      expect(m).to.include({ Description: 'persisted', KeyState: 'Enabled' });
      expect(m.MultiRegionConfiguration).to.deep.equal({ MultiRegionKeyType: 'PRIMARY', PrimaryKey: { Arn: arnIn(WEST, keyId), Region: WEST }, ReplicaKeys: [{ Arn: arnIn(EAST, keyId), Region: EAST }] });
      expect(Buffer.from((await west.send(new DecryptCommand({ CiphertextBlob }))).Plaintext!).toString()).to.equal('across restarts');

      // The record that created the material goes first; the other region's reference keeps it,
      // through the sweeper and through start-up reconciliation.
      await server.client({ region: EAST }).send(new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: 7 }));
      server = await server.restart({ clockOffsetSeconds: 8 * DAY_S });
      await server.waitForLog(/key deleted at the end of its waiting period/);
      server = await server.restart({ clockOffsetSeconds: 8 * DAY_S });
      west = server.client({ region: WEST, clockOffsetMs: 8 * DAY_S * 1000 });
      expect(objects()).to.equal(1);
      expect((await west.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!.MultiRegionConfiguration!.ReplicaKeys).to.deep.equal([]);
      expect(Buffer.from((await west.send(new DecryptCommand({ CiphertextBlob }))).Plaintext!).toString()).to.equal('across restarts');
      expect(server.stderr()).to.not.match(/destroyed a token object no key refers to|key material is missing/);
    } finally {
      await server.stop();
    }
  });
});

describe('multi-Region keys under access control (strict mode)', function () {
  const user = (name: string) => ({ accessKeyId: `AKIA${name.toUpperCase().padEnd(16, '0')}`, secretAccessKey: `${name}-secret`, accountId: ACCOUNT, principalArn: `arn:aws:iam::${ACCOUNT}:user/${name}` });
  const ADMIN = user('admin');
  const EASTONLY = user('eastonly');
  const NOTAGS = user('notags');
  let server: TestServer;
  const as = (who: ReturnType<typeof user>, region: string) => server.client({ region, accessKeyId: who.accessKeyId, secretAccessKey: who.secretAccessKey });

  serverPerSuite(() => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'p11kms-mrk-access-')), 'credentials.json');
    const allow = (Action: string | string[], Condition?: Record<string, unknown>) => ({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action, Resource: '*', ...(Condition ? { Condition } : {}) }] });
    fs.writeFileSync(
      file,
      JSON.stringify({
        accessKeys: [ADMIN, EASTONLY, NOTAGS],
        identityPolicies: {
          [ADMIN.principalArn]: allow('kms:*'),
          [EASTONLY.principalArn]: allow('kms:*', { StringEquals: { 'aws:RequestedRegion': EAST } }),
          [NOTAGS.principalArn]: allow(['kms:CreateKey', 'kms:ReplicateKey', 'kms:DescribeKey']),
        },
      }),
    );
    return { auth: 'strict', credentialsFile: file };
  }, (started) => (server = started));

  it('ReplicateKey needs kms:ReplicateKey on the primary, and kms:CreateKey (kms:TagResource with tags) in the replica region', async () => {
    const keyId = (await as(ADMIN, EAST).send(new CreateKeyCommand({ MultiRegion: true }))).KeyMetadata!.KeyId!;
    const refused = await expectKmsError(as(EASTONLY, EAST).send(new ReplicateKeyCommand({ KeyId: keyId, ReplicaRegion: WEST })));
    expect(refused.name).to.equal('AccessDeniedException');
    expect(refused.message).to.equal(`User: ${EASTONLY.principalArn} is not authorized to perform: kms:CreateKey on resource: * because no identity-based policy allows the kms:CreateKey action`);
    const untagged = await expectKmsError(as(NOTAGS, EAST).send(new ReplicateKeyCommand({ KeyId: keyId, ReplicaRegion: WEST, Tags: [{ TagKey: 'a', TagValue: 'b' }] })));
    expect(untagged.message).to.contain('kms:TagResource');
    await as(NOTAGS, EAST).send(new ReplicateKeyCommand({ KeyId: keyId, ReplicaRegion: WEST }));

    // A primary whose key policy denies kms:ReplicateKey cannot be replicated by anyone it names.
    const deny = JSON.stringify({
      Version: '2012-10-17',
      Statement: [
        { Sid: 'admin', Effect: 'Allow', Principal: { AWS: ADMIN.principalArn }, Action: 'kms:*', Resource: '*' },
        { Sid: 'no-replicas', Effect: 'Deny', Principal: { AWS: ADMIN.principalArn }, Action: 'kms:ReplicateKey', Resource: '*' },
      ],
    });
    await as(ADMIN, EAST).send(new PutKeyPolicyCommand({ KeyId: keyId, PolicyName: 'default', Policy: deny }));
    const denied = await expectKmsError(as(ADMIN, EAST).send(new ReplicateKeyCommand({ KeyId: keyId, ReplicaRegion: EU })));
    expect(denied.message).to.equal(`User: ${ADMIN.principalArn} is not authorized to perform: kms:ReplicateKey on resource: ${arnIn(EAST, keyId)} with an explicit deny in a resource-based policy`);
  });

  it('UpdatePrimaryRegion needs kms:UpdatePrimaryRegion on the primary and on the replica', async () => {
    const keyId = (await as(ADMIN, EAST).send(new CreateKeyCommand({ MultiRegion: true }))).KeyMetadata!.KeyId!;
    const replicaPolicy = JSON.stringify({
      Version: '2012-10-17',
      Statement: [
        { Sid: 'admin', Effect: 'Allow', Principal: { AWS: ADMIN.principalArn }, Action: 'kms:*', Resource: '*' },
        { Sid: 'stay-replica', Effect: 'Deny', Principal: { AWS: ADMIN.principalArn }, Action: 'kms:UpdatePrimaryRegion', Resource: '*' },
      ],
    });
    await as(ADMIN, EAST).send(new ReplicateKeyCommand({ KeyId: keyId, ReplicaRegion: WEST, Policy: replicaPolicy }));
    const denied = await expectKmsError(as(ADMIN, EAST).send(new UpdatePrimaryRegionCommand({ KeyId: keyId, PrimaryRegion: WEST })));
    expect(denied.message).to.equal(`User: ${ADMIN.principalArn} is not authorized to perform: kms:UpdatePrimaryRegion on resource: ${arnIn(WEST, keyId)} with an explicit deny in a resource-based policy`);
    expect((await as(ADMIN, WEST).send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!.MultiRegionConfiguration!.MultiRegionKeyType).to.equal('REPLICA');
  });
});
