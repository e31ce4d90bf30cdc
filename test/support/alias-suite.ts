/**
 * What the alias suites (aliases-create-update-delete, aliases-listing) share: a server of
 * each suite's own with a client per region, and the calls their tests build on.
 */
import { randomUUID } from 'node:crypto';
import {
  type AliasListEntry,
  CreateKeyCommand,
  EncryptCommand,
  type EncryptCommandOutput,
  type KeyMetadata,
  type KMSClient,
  ListAliasesCommand,
} from '@aws-sdk/client-kms';
import { ACCOUNT, followMarkers, serverWithRegionalClients } from './regional-clients';

export const REGION = 'us-east-1';
export const PLAINTEXT = Buffer.from('alias test plaintext');

export function uniqueAlias(label = 'a'): string {
  return `alias/${label}-${randomUUID()}`;
}

export function aliasArnOf(region: string, aliasName: string): string {
  return `arn:aws:kms:${region}:${ACCOUNT}:${aliasName}`;
}

export interface AliasSuite {
  kms(region?: string): KMSClient;
  createKey(region?: string): Promise<KeyMetadata>;
  /** Every alias of the region (or of one key), following NextMarker page by page. */
  listAllAliases(region?: string, keyId?: string): Promise<AliasListEntry[]>;
  findAlias(name: string, region?: string): Promise<AliasListEntry | undefined>;
  /** Encrypt PLAINTEXT under `keyId` (a key or alias reference). */
  encryptVia(keyId: string, region?: string): Promise<EncryptCommandOutput>;
}

/** Registers before/after hooks in the calling describe (see serverWithRegionalClients). */
export function aliasSuite(): AliasSuite {
  const kms = serverWithRegionalClients();

  function listAllAliases(region = REGION, keyId?: string): Promise<AliasListEntry[]> {
    return followMarkers('ListAliases', async (marker) => {
      const out = await kms(region).send(new ListAliasesCommand({ KeyId: keyId, Marker: marker }));
      return { ...out, items: out.Aliases };
    });
  }

  return {
    kms,
    async createKey(region = REGION) {
      const out = await kms(region).send(new CreateKeyCommand({}));
      return out.KeyMetadata!;
    },
    listAllAliases,
    async findAlias(name, region = REGION) {
      return (await listAllAliases(region)).find((a) => a.AliasName === name);
    },
    async encryptVia(keyId, region = REGION) {
      return kms(region).send(new EncryptCommand({ KeyId: keyId, Plaintext: PLAINTEXT }));
    },
  };
}
