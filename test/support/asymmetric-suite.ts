/**
 * What the asymmetric suites (asymmetric-rsa-encryption, asymmetric-sign-mac-agreement)
 * share, per test token: a server of the suite's own, one key per spec and usage made on first use,
 * and the refusal a token that lacks a key spec must give.
 */
import * as crypto from 'node:crypto';
import { CreateKeyCommand, GetPublicKeyCommand, type KeyMetadata, type KeySpec, type KeyUsageType, type KMSClient } from '@aws-sdk/client-kms';
import { expect } from 'chai';
import { expectKmsError, serverPerSuite, type TestServer } from './server';
import type { TestToken } from './test-tokens';

export const CKO_PRIVATE_KEY = 3;
export const CKO_SECRET_KEY = 4;

export interface KeySpecsAtHealth {
  supported: string[];
  unsupported: Record<string, string>;
}

export interface AsymmetricSuite {
  /** The running server, its client and what it reported at /health (set once `before` ran). */
  started(): { server: TestServer; kms: KMSClient; keySpecs: KeySpecsAtHealth };
  /** Specs this token lacks: SoftHSM2 2.6.1 none of these; NSS softokn 3.87 no secp256k1 and no EdDSA. */
  lacking: string[];
  /** The keys `key` made, for the custody check. */
  keys: Map<string, KeyMetadata>;
  /** On a token that cannot make `spec`, CreateKey must refuse it naming why; nothing more to check then. */
  refusedHere(spec: KeySpec, usage: KeyUsageType): Promise<boolean>;
  /** One key per spec and usage, created once and shared by the tests that need it. */
  key(spec: KeySpec, usage: KeyUsageType): Promise<KeyMetadata>;
  publicKeyOf(keyId: string): Promise<crypto.KeyObject>;
}

/** Registers before/after hooks in the calling describe. */
export function asymmetricSuite(token: TestToken): AsymmetricSuite {
  let server: TestServer;
  let kms: KMSClient;
  let keySpecs: KeySpecsAtHealth;
  const keys = new Map<string, KeyMetadata>();
  const lacking = token.name === 'nss-softokn' ? ['ECC_NIST_EDWARDS25519', 'ECC_SECG_P256K1'] : [];

  serverPerSuite({}, (s, client) => ([server, kms] = [s, client]));
  before(async () => {
    keySpecs = ((await (await fetch(`${server.endpoint}/health`)).json()) as { keySpecs: KeySpecsAtHealth }).keySpecs;
  });

  return {
    started: () => ({ server, kms, keySpecs }),
    lacking,
    keys,
    async refusedHere(spec, usage) {
      if (!lacking.includes(spec)) return false;
      const err = await expectKmsError(kms.send(new CreateKeyCommand({ KeySpec: spec, KeyUsage: usage })));
      expect([err.name, err.message]).to.deep.equal(['UnsupportedOperationException', `KeySpec ${spec} is not supported by this key store: ${keySpecs.unsupported[spec]}.`]);
      return true;
    },
    async key(spec, usage) {
      const id = `${spec}/${usage}`;
      if (!keys.has(id)) keys.set(id, (await kms.send(new CreateKeyCommand({ KeySpec: spec, KeyUsage: usage }))).KeyMetadata!);
      return keys.get(id)!;
    },
    async publicKeyOf(keyId) {
      const { PublicKey } = await kms.send(new GetPublicKeyCommand({ KeyId: keyId }));
      return crypto.createPublicKey({ key: Buffer.from(PublicKey!), format: 'der', type: 'spki' });
    },
  };
}
