/**
 * AWS's table "How key states affect operations" (developer guide, Key states of AWS KMS
 * keys): the cases where p11kms answered otherwise, through the real SDK against the real
 * server. Refused requests change nothing, so each key serves every case of its state.
 */
import { constants, createPublicKey, publicEncrypt, randomBytes } from 'node:crypto';
import { expect } from 'chai';
import {
  CancelKeyDeletionCommand,
  CreateAliasCommand,
  CreateGrantCommand,
  CreateKeyCommand,
  type CreateKeyCommandInput,
  DecryptCommand,
  DeleteImportedKeyMaterialCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  EnableKeyCommand,
  EncryptCommand,
  GetParametersForImportCommand,
  ImportKeyMaterialCommand,
  type KMSClient,
  ListGrantsCommand,
  ListResourceTagsCommand,
  ReplicateKeyCommand,
  ScheduleKeyDeletionCommand,
  TagResourceCommand,
  UntagResourceCommand,
  UpdateAliasCommand,
  UpdateKeyDescriptionCommand,
} from '@aws-sdk/client-kms';
import { expectKmsError, serverPerSuite } from '../support/server';

type StateName = 'Disabled' | 'PendingImport' | 'PendingReplicaDeletion';
interface Key {
  id: string;
  arn: string;
}

const GRANTEE = 'arn:aws:iam::111122223333:root';
const REFUSED: Record<StateName, [string, string]> = {
  Disabled: ['DisabledException', 'is disabled.'],
  PendingImport: ['KMSInvalidStateException', 'is pending import.'],
  PendingReplicaDeletion: ['KMSInvalidStateException', 'is pending replica deletion.'],
};

/** [state, operation, request]: each is refused with the state's exception and `<key-arn> <text>`. */
const CASES: Array<[StateName, string, (kms: KMSClient, k: Key) => Promise<unknown>]> = [
  ['Disabled', 'CreateGrant', (kms, k) => kms.send(new CreateGrantCommand({ KeyId: k.id, GranteePrincipal: GRANTEE, Operations: ['Encrypt'] }))],
  ['PendingImport', 'CreateGrant', (kms, k) => kms.send(new CreateGrantCommand({ KeyId: k.id, GranteePrincipal: GRANTEE, Operations: ['Encrypt'] }))],
  ['PendingReplicaDeletion', 'CreateGrant', (kms, k) => kms.send(new CreateGrantCommand({ KeyId: k.id, GranteePrincipal: GRANTEE, Operations: ['Encrypt'] }))],
  ['PendingReplicaDeletion', 'TagResource', (kms, k) => kms.send(new TagResourceCommand({ KeyId: k.id, Tags: [{ TagKey: 'new', TagValue: 'v' }] }))],
  ['PendingReplicaDeletion', 'UntagResource', (kms, k) => kms.send(new UntagResourceCommand({ KeyId: k.id, TagKeys: ['kept'] }))],
  ['PendingReplicaDeletion', 'UpdateKeyDescription', (kms, k) => kms.send(new UpdateKeyDescriptionCommand({ KeyId: k.id, Description: 'changed' }))],
  ['PendingReplicaDeletion', 'CreateAlias (target)', (kms, k) => kms.send(new CreateAliasCommand({ AliasName: 'alias/key-states-new', TargetKeyId: k.id }))],
  ['PendingReplicaDeletion', 'UpdateAlias (new target)', (kms, k) => kms.send(new UpdateAliasCommand({ AliasName: 'alias/key-states-other', TargetKeyId: k.id }))],
];

describe('key states × operations: AWS key-state table', function () {
  this.timeout(60_000);
  let kms: KMSClient;
  const keys = {} as Record<StateName, Key>;
  const created = async (input: CreateKeyCommandInput): Promise<Key> => {
    const md = (await kms.send(new CreateKeyCommand(input))).KeyMetadata!;
    return { id: md.KeyId!, arn: md.Arn! };
  };
  const stateOf = async (k: Key) => (await kms.send(new DescribeKeyCommand({ KeyId: k.id }))).KeyMetadata!.KeyState;
  /** ImportKeyMaterial as an AWS user does it, with node:crypto. */
  const importInto = async (k: Key, material: Buffer) => {
    const params = await kms.send(new GetParametersForImportCommand({ KeyId: k.id, WrappingAlgorithm: 'RSAES_OAEP_SHA_256', WrappingKeySpec: 'RSA_2048' }));
    const wrapping = createPublicKey({ key: Buffer.from(params.PublicKey!), format: 'der', type: 'spki' });
    const wrapped = publicEncrypt({ key: wrapping, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, material);
    return kms.send(new ImportKeyMaterialCommand({ KeyId: k.id, ImportToken: params.ImportToken, EncryptedKeyMaterial: wrapped, ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE' }));
  };

  serverPerSuite({}, (_server, client) => (kms = client));
  before(async () => {
    keys.Disabled = await created({});
    await kms.send(new DisableKeyCommand({ KeyId: keys.Disabled.id }));
    keys.PendingImport = await created({ Origin: 'EXTERNAL' });
    keys.PendingReplicaDeletion = await created({ MultiRegion: true, Tags: [{ TagKey: 'kept', TagValue: 'v' }] });
    await kms.send(new ReplicateKeyCommand({ KeyId: keys.PendingReplicaDeletion.id, ReplicaRegion: 'us-west-2' }));
    await kms.send(new ScheduleKeyDeletionCommand({ KeyId: keys.PendingReplicaDeletion.id, PendingWindowInDays: 7 }));
    await kms.send(new CreateAliasCommand({ AliasName: 'alias/key-states-other', TargetKeyId: (await created({})).id }));
  });

  for (const [state, operation, request] of CASES) {
    const [name, text] = REFUSED[state];
    it(`${operation} on a ${state} key: ${name} "<key-arn> ${text}"`, async () => {
      const key = keys[state];
      const err = await expectKmsError(request(kms, key));
      expect([err.name, err.message, err.$metadata?.httpStatusCode]).to.deep.equal([name, `${key.arn} ${text}`, 400]);
    });
  }

  it('the refused requests changed nothing: no grants, tags, description or aliases, states as before', async () => {
    for (const state of Object.keys(keys) as StateName[]) {
      expect(await stateOf(keys[state]), state).to.equal(state);
      expect((await kms.send(new ListGrantsCommand({ KeyId: keys[state].id }))).Grants, state).to.deep.equal([]);
    }
    const prd = keys.PendingReplicaDeletion;
    expect((await kms.send(new ListResourceTagsCommand({ KeyId: prd.id }))).Tags).to.deep.equal([{ TagKey: 'kept', TagValue: 'v' }]);
    expect((await kms.send(new DescribeKeyCommand({ KeyId: 'alias/key-states-other' }))).KeyMetadata!.KeyId).not.to.equal(prd.id);
    expect((await expectKmsError(kms.send(new DescribeKeyCommand({ KeyId: 'alias/key-states-new' })))).name).to.equal('NotFoundException');
  });

  it('DeleteImportedKeyMaterial on a key pending import has no effect and succeeds', async () => {
    const k = keys.PendingImport;
    expect(await kms.send(new DeleteImportedKeyMaterialCommand({ KeyId: k.id }))).to.include({ KeyId: k.arn }).and.not.have.property('KeyMaterialId');
    expect(await stateOf(k)).to.equal('PendingImport');
  });

  it('DeleteImportedKeyMaterial on a key pending deletion keeps it pending deletion; cancelled, it is pending import until the material is back, then Disabled', async () => {
    const k = await created({ Origin: 'EXTERNAL' });
    const material = randomBytes(32);
    const { KeyMaterialId } = await importInto(k, material);
    const { CiphertextBlob } = await kms.send(new EncryptCommand({ KeyId: k.id, Plaintext: Buffer.from('kept') }));
    await kms.send(new ScheduleKeyDeletionCommand({ KeyId: k.id, PendingWindowInDays: 7 }));
    expect(await kms.send(new DeleteImportedKeyMaterialCommand({ KeyId: k.id }))).to.include({ KeyId: k.arn, KeyMaterialId });
    expect(await stateOf(k)).to.equal('PendingDeletion');
    await kms.send(new CancelKeyDeletionCommand({ KeyId: k.id }));
    expect(await stateOf(k)).to.equal('PendingImport');
    const refused = await expectKmsError(kms.send(new EnableKeyCommand({ KeyId: k.id })));
    expect([refused.name, refused.message]).to.deep.equal(['KMSInvalidStateException', `${k.arn} is pending import.`]);
    await importInto(k, material);
    expect(await stateOf(k)).to.equal('Disabled');
    await kms.send(new EnableKeyCommand({ KeyId: k.id }));
    expect(Buffer.from((await kms.send(new DecryptCommand({ CiphertextBlob }))).Plaintext!).toString()).to.equal('kept');
  });
});
