import * as pkcs11js from 'pkcs11js';
import type { KeySpec, KeyUsageType } from '../model/generated/types';
import { AsymmetricCrypto } from './asymmetric-crypto';
import { KeyImporter } from './key-import';
import { aesKeyTemplate, familyOf, generationMechanism, hmacTemplate, pairTemplates } from './key-templates';
import { MaterialObjects, materialNaming, type NewMaterialRef } from './material-objects';
import { SignVerify } from './sign-verify';
import { SymmetricCrypto } from './symmetric-crypto';
import type { Token } from './token';
import { retryingCreation } from './token-objects';

export { MATERIAL_LABEL_PREFIX, type MaterialAttributes, materialLabel, materialNaming, type MaterialRef, type NewMaterialRef, parseMaterialLabel } from './material-objects';
export { JWK_CURVE } from './key-templates';
export type { OperationStep } from './symmetric-crypto';

/**
 * Every use of a master key is one of these calls into the token. No method returns or
 * accepts master-key bytes; data keys leave the token only where the KMS API returns them
 * as plaintext.
 *
 * The one entry point the rest of p11kms holds: key generation and token objects here, each
 * family of use in a module of its own that callers reach directly (custody.symmetric.encrypt).
 */
export class KeyCustody {
  /** Import wrapping keys and imported material (GetParametersForImport, ImportKeyMaterial). */
  readonly importer: KeyImporter;
  /** AES-256-GCM and wrapped data keys (symmetric-crypto.ts). */
  readonly symmetric: SymmetricCrypto;
  /** Signatures and MACs (sign-verify.ts). */
  readonly signatures: SignVerify;
  /** Public keys, RSA-OAEP, ECDH and data key pairs (asymmetric-crypto.ts). */
  readonly asymmetric: AsymmetricCrypto;
  /** The token objects holding key material: existence, attributes, destruction (material-objects.ts). */
  readonly objects: MaterialObjects;

  constructor(private readonly token: Token) {
    this.importer = new KeyImporter(token);
    this.objects = new MaterialObjects(token);
    this.symmetric = new SymmetricCrypto(token);
    this.signatures = new SignVerify(token);
    this.asymmetric = new AsymmetricCrypto(token);
  }

  /** Keeps the token open across a creation (Token.hold); undefined once it is closed. */
  hold(): (() => void) | undefined {
    return this.token.hold();
  }

  /** The HSM profile's quirk list of OAEP hashes the token performs itself. */
  get oaepHashesInToken(): readonly string[] | undefined {
    return this.token.profile.quirks.oaepHashesInToken;
  }

  get profileName(): string {
    return this.token.profile.name;
  }

  /** Creates an AES-256 master key in the token: sensitive, never extractable. */
  private async generateSymmetricKey(ref: NewMaterialRef): Promise<void> {
    const key = await this.token.run('generate symmetric key', (session) =>
      this.token.pkcs11.C_GenerateKeyAsync(session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, aesKeyTemplate(materialNaming(ref), true, this.token.heldInToken)),
      retryingCreation(this.token, ref.creationId),
    );
    this.token.lookup.created(ref.creationId, pkcs11js.CKO_SECRET_KEY, key);
  }

  async random(length: number): Promise<Buffer> {
    return this.token.run('generate random', (session) =>
      this.token.pkcs11.C_GenerateRandom(session, Buffer.alloc(length)),
    );
  }

  /** Key specs the token can generate, from its mechanism list. */
  canGenerate(spec: KeySpec): { ok: true } | { ok: false; missing: string } {
    const known = this.token.profile.quirks.unsupportedKeySpecs?.[spec];
    if (known) return { ok: false, missing: known };
    const mechanism = generationMechanism(spec);
    if (mechanism === undefined) return { ok: false, missing: `a ${spec} mechanism (PKCS#11 defines none this module offers)` };
    if (!this.token.mechanisms.has(mechanism)) return { ok: false, missing: `mechanism 0x${mechanism.toString(16)}` };
    return { ok: true };
  }

  /**
   * Creates a KMS key of any supported spec in the token, with the key usage written into
   * its attributes: private and secret parts sensitive and never extractable.
   */
  async generateKey(ref: NewMaterialRef, spec: KeySpec, usage: KeyUsageType): Promise<void> {
    const family = familyOf(spec);
    if (family === 'aes') return this.generateSymmetricKey(ref);
    if (family === 'hmac') {
      const key = await this.token.run('generate HMAC key', (session) =>
        this.token.pkcs11.C_GenerateKeyAsync(session, { mechanism: pkcs11js.CKM_GENERIC_SECRET_KEY_GEN }, hmacTemplate(spec, materialNaming(ref), this.token.heldInToken)),
        retryingCreation(this.token, ref.creationId),
      );
      this.token.lookup.created(ref.creationId, pkcs11js.CKO_SECRET_KEY, key);
      return;
    }
    const t = pairTemplates(spec, usage, materialNaming(ref), true, this.token.copiesKeys);
    const pair = await this.token.run('generate key pair', (session) =>
      this.token.pkcs11.C_GenerateKeyPairAsync(session, { mechanism: t.mechanism }, t.publicTemplate, t.privateTemplate),
      retryingCreation(this.token, ref.creationId),
    );
    this.token.lookup.created(ref.creationId, pkcs11js.CKO_PUBLIC_KEY, pair.publicKey);
    this.token.lookup.created(ref.creationId, pkcs11js.CKO_PRIVATE_KEY, pair.privateKey);
  }

  /** Object files a crash left half-made that no lookup can reach (embedded SoftHSM2 only). */
  removeCrashRemnants(olderThanMs: number): number {
    return this.token.removeCrashRemnants(olderThanMs);
  }
}
