/**
 * What the key-management suites (key-creation, key-listing-and-regions, key-state-changes)
 * share: a server of each suite's own with a client per region, and the calls their tests
 * build on.
 */
import { randomUUID } from 'node:crypto';
import {
  CreateKeyCommand,
  type CreateKeyCommandInput,
  DescribeKeyCommand,
  type KeyListEntry,
  type KeyMetadata,
  type KMSClient,
  ListKeysCommand,
} from '@aws-sdk/client-kms';
import { expect } from 'chai';
import { ACCOUNT, followMarkers, serverWithRegionalClients } from './regional-clients';

export const DAY_MS = 24 * 60 * 60 * 1000;
export const PLAINTEXT = Buffer.from('the quick brown fox');

export function arnOf(region: string, keyId: string): string {
  return `arn:aws:kms:${region}:${ACCOUNT}:key/${keyId}`;
}

export function aliasName(): string {
  return `alias/km-${randomUUID()}`;
}

export interface KeyManagementSuite {
  kms(region?: string): KMSClient;
  createKey(region?: string, input?: CreateKeyCommandInput): Promise<KeyMetadata>;
  describeKey(keyId: string, region?: string): Promise<KeyMetadata>;
  /** Every key of the region, following NextMarker page by page. */
  listAllKeys(region: string, limit?: number): Promise<KeyListEntry[]>;
}

/** Registers before/after hooks in the calling describe (see serverWithRegionalClients). */
export function keyManagementSuite(): KeyManagementSuite {
  const kms = serverWithRegionalClients();
  return {
    kms,
    async createKey(region = 'us-east-1', input = {}) {
      const out = await kms(region).send(new CreateKeyCommand(input));
      expect(out.KeyMetadata, 'CreateKey returns KeyMetadata').to.be.an('object');
      return out.KeyMetadata!;
    },
    async describeKey(keyId, region = 'us-east-1') {
      const out = await kms(region).send(new DescribeKeyCommand({ KeyId: keyId }));
      return out.KeyMetadata!;
    },
    listAllKeys(region, limit) {
      return followMarkers('ListKeys', async (marker) => {
        const out = await kms(region).send(new ListKeysCommand({ Limit: limit, Marker: marker }));
        return { ...out, items: out.Keys };
      });
    },
  };
}
