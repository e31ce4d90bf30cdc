import { constants as cryptoConstants, createPublicKey, publicEncrypt } from 'node:crypto';
import * as pkcs11js from 'pkcs11js';
import { KmsError } from '../errors';
import type { KeySpec, KeyUsageType, MessageType, SigningAlgorithmSpec } from '../model/generated/types';
import { KeyImporter } from './key-import';
import { aesKeyTemplate, EC_FIELD_BYTES, gcmMechanism, ecdhMechanism, ecdhResultTemplate, familyOf, generationMechanism, hmacTemplate, JWK_CURVE, type ObjectNaming, pairTemplates } from './key-templates';
import { ckrName } from './pkcs11-errors';
import { type PublicKeyMaterial, spkiOf } from './public-keys';
import { oaepDecode, type OaepHash } from './rsa-oaep';
import { ecdsaDerToRaw, ecdsaRawToDer, signaturePlan } from './signing';
import type { Session, Token } from './token';
import { creationIdAttribute, destroyCreation, listTokenObjects, retryingCreation, type TokenObjectInfo } from './token-objects';

/**
 * Names one piece of key material inside the token. The label is what
 * `pkcs11-tool --list-objects` shows: `p11kms:<key id>:v<material version>`. Objects are
 * found by their creation id (CKA_ID, see token-objects.ts); material recorded before
 * creation ids existed has none and is found by label.
 */
export interface MaterialRef {
  keyId: string;
  version: number;
  creationId?: string;
}

/** Material about to be made: it always has a creation id. */
export type NewMaterialRef = MaterialRef & { creationId: string };

/** Label and CKA_ID of new material (also used for imported material). */
export function materialNaming(ref: NewMaterialRef): ObjectNaming {
  return { label: materialLabel(ref), id: creationIdAttribute(ref.creationId) };
}

export const MATERIAL_LABEL_PREFIX = 'p11kms:';

export function materialLabel(ref: MaterialRef): string {
  return `${MATERIAL_LABEL_PREFIX}${ref.keyId}:v${ref.version}`;
}

export function parseMaterialLabel(label: string): MaterialRef | undefined {
  const match = /^p11kms:([0-9a-f-]{36}|mrk-[0-9a-f]{32}):v(\d+)$/.exec(label);
  return match ? { keyId: match[1], version: Number(match[2]) } : undefined;
}

/** Security attributes of a token object, as read back from the token. */
export interface MaterialAttributes {
  token: boolean;
  sensitive: boolean;
  extractable: boolean;
  alwaysSensitive: boolean;
  neverExtractable: boolean;
}

const GCM_TAG_BYTES = 16;
const GCM_IV_BYTES = 12;
const KWP_OVERHEAD_MAX = 15;

/**
 * Every use of a master key is one of these calls into the token. No method returns or
 * accepts master-key bytes; data keys leave the token only where the KMS API returns them
 * as plaintext.
 */
export class KeyCustody {
  /** Import wrapping keys and imported material (GetParametersForImport, ImportKeyMaterial). */
  readonly importer: KeyImporter;

  constructor(private readonly token: Token) {
    this.importer = new KeyImporter(token);
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
    await this.token.run('generate symmetric key', (session) =>
      this.token.pkcs11.C_GenerateKeyAsync(session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, aesKeyTemplate(materialNaming(ref), true, this.token.heldInToken)),
      retryingCreation(this.token, ref.creationId),
    );
  }

  /**
   * Destroys the material: exactly the objects of its creation, or for material recorded
   * before creation ids, the objects with its label. Returns false when there were none.
   */
  async destroy(ref: MaterialRef): Promise<boolean> {
    return this.token.run('destroy key', (session) => {
      if (ref.creationId) return destroyCreation(this.token, session, ref.creationId) > 0;
      const label = materialLabel(ref);
      const handles = this.token.findAll(session, [{ type: pkcs11js.CKA_LABEL, value: label }]);
      for (const handle of handles) this.token.pkcs11.C_DestroyObject(session, handle);
      // A key pair is two objects under one label.
      for (const objectClass of [pkcs11js.CKO_SECRET_KEY, pkcs11js.CKO_PRIVATE_KEY, pkcs11js.CKO_PUBLIC_KEY]) this.token.forgetObject(label, objectClass);
      return handles.length > 0;
    });
  }

  /** Destroys whatever one creation made (a creation that failed or lost a race); returns the object count. */
  async destroyCreation(creationId: string): Promise<number> {
    return this.token.run('destroy created objects', (session) => destroyCreation(this.token, session, creationId));
  }

  async exists(ref: MaterialRef): Promise<boolean> {
    return this.token.run('find key', (session) => {
      const template = ref.creationId ? [{ type: pkcs11js.CKA_ID, value: creationIdAttribute(ref.creationId) }] : [{ type: pkcs11js.CKA_LABEL, value: materialLabel(ref) }];
      return this.token.findAll(session, template).length > 0;
    });
  }

  /** Every token object with its label and creation id (reconciliation). */
  async listObjects(): Promise<Array<Omit<TokenObjectInfo, 'handle'>>> {
    return this.token.run('list token objects', (session) => listTokenObjects(this.token, session).map(({ handle: _handle, ...info }) => info));
  }

  /**
   * Destroys token objects reconciliation proved unreferenced: by creation id, by label
   * (objects made before creation ids), and torn objects that carry neither. Returns how
   * many objects were destroyed.
   */
  async destroyObjects(which: { creationIds: readonly string[]; labels: readonly string[]; unmarked: boolean }): Promise<number> {
    return this.token.run('destroy unreferenced objects', (session) => {
      let count = 0;
      for (const creationId of which.creationIds) count += destroyCreation(this.token, session, creationId);
      const labels = new Set(which.labels);
      for (const info of listTokenObjects(this.token, session)) {
        if (info.creationId !== undefined) continue;
        if ((which.unmarked && info.unmarked) || labels.has(info.label)) {
          this.token.pkcs11.C_DestroyObject(session, info.handle);
          count++;
        }
      }
      return count;
    });
  }

  async attributes(ref: MaterialRef): Promise<MaterialAttributes> {
    return this.token.run('read key attributes', (session) => {
      // The secret key, or the private half of a key pair.
      // The token object itself, never its session copy.
      const handle = this.lookup(session, ref, pkcs11js.CKO_PRIVATE_KEY) ?? this.lookup(session, ref, pkcs11js.CKO_SECRET_KEY);
      if (!handle) throw materialNotFound(ref, pkcs11js.CKO_SECRET_KEY);
      const attrs = this.token.pkcs11.C_GetAttributeValue(session, handle, [
        { type: pkcs11js.CKA_TOKEN },
        { type: pkcs11js.CKA_SENSITIVE },
        { type: pkcs11js.CKA_EXTRACTABLE },
        { type: pkcs11js.CKA_ALWAYS_SENSITIVE },
        { type: pkcs11js.CKA_NEVER_EXTRACTABLE },
      ]);
      const flag = (i: number) => Boolean(attrs[i].value && (attrs[i].value as Buffer)[0]);
      return { token: flag(0), sensitive: flag(1), extractable: flag(2), alwaysSensitive: flag(3), neverExtractable: flag(4) };
    });
  }

  /**
   * AES-256-GCM in the token with a fresh 96-bit IV drawn from the token's RNG in the same
   * session, so no caller can reuse an IV. Returns the IV and ciphertext‖tag.
   */
  async encrypt(ref: MaterialRef, aad: Buffer, plaintext: Buffer): Promise<{ iv: Buffer; sealed: Buffer }> {
    return this.token.run('encrypt', async (session) => {
      const iv = this.token.pkcs11.C_GenerateRandom(session, Buffer.alloc(GCM_IV_BYTES));
      return { iv, sealed: await this.sealInSession(session, ref, iv, aad, plaintext) };
    });
  }

  /**
   * A new secret of `length` bytes from the token's RNG, returned with its AES-256-GCM
   * encryption under `ref` (GenerateDataKey): one session and one draw for secret and IV.
   */
  async encryptNewSecret(ref: MaterialRef, aad: Buffer, length: number): Promise<{ plaintext: Buffer; iv: Buffer; sealed: Buffer }> {
    return this.token.run('generate and encrypt data key', async (session) => {
      const drawn = this.token.pkcs11.C_GenerateRandom(session, Buffer.alloc(length + GCM_IV_BYTES));
      const plaintext = Buffer.from(drawn.subarray(0, length));
      const iv = Buffer.from(drawn.subarray(length));
      drawn.fill(0);
      try {
        return { plaintext, iv, sealed: await this.sealInSession(session, ref, iv, aad, plaintext) };
      } catch (err) {
        plaintext.fill(0);
        throw err;
      }
    });
  }

  private async sealInSession(session: Session, ref: MaterialRef, iv: Buffer, aad: Buffer, plaintext: Buffer): Promise<Buffer> {
    const key = this.secretKey(session, ref, true)!;
    this.token.pkcs11.C_EncryptInit(session, gcmMechanism(iv, aad), key);
    return this.token.pkcs11.C_EncryptAsync(session, plaintext, Buffer.alloc(plaintext.length + GCM_TAG_BYTES));
  }

  /**
   * AES-256-GCM decryption in the token. A failed tag check (wrong key version, context or
   * tampered bytes) raises InvalidCiphertextException, as AWS does, with no detail.
   */
  async decrypt(ref: MaterialRef, iv: Buffer, aad: Buffer, ciphertext: Buffer): Promise<Buffer> {
    if (iv.length !== GCM_IV_BYTES || ciphertext.length < GCM_TAG_BYTES) throw invalidCiphertext();
    return this.token.run('decrypt', async (session) => {
      const key = this.secretKey(session, ref, true)!;
      this.token.pkcs11.C_DecryptInit(session, gcmMechanism(iv, aad), key);
      try {
        return await this.token.pkcs11.C_DecryptAsync(session, ciphertext, Buffer.alloc(ciphertext.length));
      } catch (err) {
        if (this.isTagFailure(err)) throw invalidCiphertext();
        throw err;
      }
    });
  }

  /**
   * Generates a secret of `length` bytes inside the token and returns it wrapped
   * (AES key wrap with padding, RFC 5649) under the master key. The plaintext secret never
   * exists outside the token.
   */
  async generateWrappedSecret(ref: MaterialRef, length: number): Promise<Buffer> {
    this.checkSecretLength(length);
    return this.token.run('generate wrapped data key', async (session) => {
      const wrappingKey = this.secretKey(session, ref, true)!;
      const secret = await this.token.pkcs11.C_GenerateKeyAsync(
        session,
        { mechanism: pkcs11js.CKM_GENERIC_SECRET_KEY_GEN },
        sessionSecretTemplate(length, true),
      );
      try {
        return await this.token.pkcs11.C_WrapKeyAsync(
          session,
          { mechanism: this.token.rfc5649 },
          wrappingKey,
          secret,
          Buffer.alloc(length + KWP_OVERHEAD_MAX + 8),
        );
      } finally {
        this.token.pkcs11.C_DestroyObject(session, secret);
      }
    });
  }

  /** Refuses secrets longer than the token can hold (profile quirk maxSecretBytes). */
  private checkSecretLength(bytes: number, what = `data keys of ${bytes} bytes`): void {
    const max = this.token.profile.quirks.maxSecretBytes;
    if (max !== undefined && bytes > max) {
      throw new KmsError('UnsupportedOperationException', `This key store's token holds secrets of at most ${max} bytes, so it cannot make or open ${what}.`);
    }
  }

  /** Unwraps a secret made by generateWrappedSecret and returns its bytes (for Decrypt). */
  async unwrapSecret(ref: MaterialRef, wrapped: Buffer, length: number): Promise<Buffer> {
    this.checkSecretLength(wrapped.length - KWP_BLOCK);
    return this.token.run('unwrap data key', async (session) => {
      const wrappingKey = this.secretKey(session, ref, true)!;
      const secret = await this.unwrapToSession(session, wrappingKey, wrapped, false);
      try {
        const [attr] = this.token.pkcs11.C_GetAttributeValue(session, secret, [{ type: pkcs11js.CKA_VALUE }]);
        const value = attr.value as Buffer;
        // The token may return the padded length (SoftHSM2 2.6); the true length travels with
        // the blob, or (length 0) the secret is a DER structure that delimits itself.
        const trueLength = length === 0 ? derTotalLength(value) : length;
        if (trueLength === undefined || value.length < trueLength) throw invalidCiphertext();
        return Buffer.from(value.subarray(0, trueLength));
      } finally {
        this.token.pkcs11.C_DestroyObject(session, secret);
      }
    });
  }

  /** Moves a wrapped secret from one master key to another without it leaving the token. */
  async rewrapSecret(from: MaterialRef, wrapped: Buffer, to: MaterialRef): Promise<Buffer> {
    this.checkSecretLength(wrapped.length - KWP_BLOCK);
    return this.token.run('rewrap data key', async (session) => {
      const source = this.secretKey(session, from, true)!;
      const destination = this.secretKey(session, to, true)!;
      const secret = await this.unwrapToSession(session, source, wrapped, true);
      try {
        return await this.token.pkcs11.C_WrapKeyAsync(
          session,
          { mechanism: this.token.rfc5649 },
          destination,
          secret,
          Buffer.alloc(wrapped.length + KWP_OVERHEAD_MAX + 8),
        );
      } finally {
        this.token.pkcs11.C_DestroyObject(session, secret);
      }
    });
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
      await this.token.run('generate HMAC key', (session) =>
        this.token.pkcs11.C_GenerateKeyAsync(session, { mechanism: pkcs11js.CKM_GENERIC_SECRET_KEY_GEN }, hmacTemplate(spec, materialNaming(ref), this.token.heldInToken)),
        retryingCreation(this.token, ref.creationId),
      );
      return;
    }
    const t = pairTemplates(spec, usage, materialNaming(ref), true, this.token.copiesKeys);
    await this.token.run('generate key pair', (session) =>
      this.token.pkcs11.C_GenerateKeyPairAsync(session, { mechanism: t.mechanism }, t.publicTemplate, t.privateTemplate),
      retryingCreation(this.token, ref.creationId),
    );
  }

  /** The DER SubjectPublicKeyInfo of an asymmetric key, read from its public object. */
  async publicKey(ref: MaterialRef, spec: KeySpec): Promise<Buffer> {
    return this.token.run('read public key', (session) => spkiOf(spec, this.publicMaterial(session, ref, spec)));
  }

  /** Checks algorithm, key spec and digest length the way sign/verify would (for DryRun). */
  checkSignatureRequest(spec: KeySpec, algorithm: SigningAlgorithmSpec, messageType: MessageType, message: Buffer): void {
    signaturePlan(spec, algorithm, messageType, message);
  }

  async sign(ref: MaterialRef, spec: KeySpec, algorithm: SigningAlgorithmSpec, messageType: MessageType, message: Buffer): Promise<Buffer> {
    const plan = signaturePlan(spec, algorithm, messageType, message);
    return this.token.run('sign', async (session) => {
      const key = this.requiredObject(session, ref, pkcs11js.CKO_PRIVATE_KEY);
      this.token.pkcs11.C_SignInit(session, plan.mechanism, key);
      const signature = await this.token.pkcs11.C_SignAsync(session, plan.input, Buffer.alloc(1024));
      return plan.ecdsa ? ecdsaRawToDer(signature) : signature;
    });
  }

  /** Verifies inside the token; false for any signature that does not verify or parse. */
  async verify(ref: MaterialRef, spec: KeySpec, algorithm: SigningAlgorithmSpec, messageType: MessageType, message: Buffer, signature: Buffer): Promise<boolean> {
    const plan = signaturePlan(spec, algorithm, messageType, message);
    let tokenSignature: Buffer | undefined = signature;
    if (plan.ecdsa) tokenSignature = ecdsaDerToRaw(signature, EC_FIELD_BYTES[spec]);
    if (!tokenSignature) return false;
    const toVerify = tokenSignature;
    return this.token.run('verify', async (session) => {
      const key = this.requiredObject(session, ref, pkcs11js.CKO_PUBLIC_KEY);
      this.token.pkcs11.C_VerifyInit(session, plan.mechanism, key);
      return this.verdict(this.token.pkcs11.C_VerifyAsync(session, plan.input, toVerify));
    });
  }

  /** HMAC in the token. */
  async mac(ref: MaterialRef, spec: KeySpec, message: Buffer): Promise<Buffer> {
    return this.token.run('generate MAC', async (session) => {
      const key = this.requiredObject(session, ref, pkcs11js.CKO_SECRET_KEY);
      this.token.pkcs11.C_SignInit(session, { mechanism: HMAC_MECHANISM[spec] }, key);
      return this.token.pkcs11.C_SignAsync(session, message, Buffer.alloc(64));
    });
  }

  async verifyMac(ref: MaterialRef, spec: KeySpec, message: Buffer, mac: Buffer): Promise<boolean> {
    return this.token.run('verify MAC', async (session) => {
      const key = this.requiredObject(session, ref, pkcs11js.CKO_SECRET_KEY);
      this.token.pkcs11.C_VerifyInit(session, { mechanism: HMAC_MECHANISM[spec] }, key);
      return this.verdict(this.token.pkcs11.C_VerifyAsync(session, message, mac));
    });
  }

  /**
   * RSA-OAEP decryption with the private key in the token: the token's own OAEP where it
   * offers the hash, else a raw RSA operation in the token and constant-time OAEP decoding
   * here. Every failure is the same InvalidCiphertextException.
   */
  async rsaDecrypt(ref: MaterialRef, hash: OaepHash, ciphertext: Buffer): Promise<Buffer> {
    const inToken = this.token.profile.quirks.oaepHashesInToken?.includes(hash) ?? true;
    return this.token.run('RSA decrypt', async (session) => {
      const key = this.requiredObject(session, ref, pkcs11js.CKO_PRIVATE_KEY);
      const mechanism: pkcs11js.Mechanism = inToken
        ? {
            mechanism: pkcs11js.CKM_RSA_PKCS_OAEP,
            parameter: {
              type: pkcs11js.CK_PARAMS_RSA_OAEP,
              hashAlg: hash === 'sha1' ? pkcs11js.CKM_SHA_1 : pkcs11js.CKM_SHA256,
              mgf: hash === 'sha1' ? pkcs11js.CKG_MGF1_SHA1 : pkcs11js.CKG_MGF1_SHA256,
              source: CKZ_DATA_SPECIFIED,
            } as pkcs11js.RsaOAEP,
          }
        : { mechanism: pkcs11js.CKM_RSA_X_509 };
      this.token.pkcs11.C_DecryptInit(session, mechanism, key);
      let output: Buffer;
      try {
        output = await this.token.pkcs11.C_DecryptAsync(session, ciphertext, Buffer.alloc(ciphertext.length));
      } catch (err) {
        if (RSA_DECRYPT_FAILURES.has(ckrName(err) ?? '') || this.isIntegrityFailure(ckrName(err))) throw invalidCiphertext();
        throw err;
      }
      if (inToken) return output;
      // CKM_RSA_X_509 may drop leading zero bytes; OAEP decoding needs the full block.
      const block = Buffer.concat([Buffer.alloc(ciphertext.length - output.length), output]);
      const message = oaepDecode(block, hash);
      block.fill(0);
      output.fill(0);
      if (!message) throw invalidCiphertext();
      return message;
    });
  }

  /** RSA-OAEP encryption: a public-key operation, done with the public key read from the token. */
  async rsaEncrypt(ref: MaterialRef, spec: KeySpec, hash: OaepHash, plaintext: Buffer): Promise<Buffer> {
    const spki = await this.publicKey(ref, spec);
    return publicEncrypt(
      { key: createPublicKey({ key: spki, format: 'der', type: 'spki' }), padding: cryptoConstants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash },
      plaintext,
    );
  }

  /** ECDH in the token with the peer's uncompressed point; returns the raw shared secret. */
  async deriveSharedSecret(ref: MaterialRef, spec: KeySpec, peerPoint: Buffer): Promise<Buffer> {
    return this.token.run('derive shared secret', async (session) => {
      const key = this.requiredObject(session, ref, pkcs11js.CKO_PRIVATE_KEY);
      const secret = await this.token.pkcs11.C_DeriveKeyAsync(session, ecdhMechanism(peerPoint), key, ecdhResultTemplate(spec));
      try {
        const [attr] = this.token.pkcs11.C_GetAttributeValue(session, secret, [{ type: pkcs11js.CKA_VALUE }]);
        return Buffer.from(attr.value as Buffer);
      } finally {
        this.token.pkcs11.C_DestroyObject(session, secret);
      }
    });
  }

  /**
   * A data key pair generated in the token; its private key is wrapped there (as PKCS#8,
   * RFC 5649) under a symmetric master key and both halves are destroyed. Returns the
   * public key and the wrapped private key.
   */
  async generateWrappedKeyPair(wrapWith: MaterialRef, spec: KeySpec): Promise<{ publicKey: Buffer; wrapped: Buffer }> {
    // The wrapped private key is unwrapped as one generic secret on Decrypt: refuse up front
    // a pair whose PKCS#8 form the token could not hold.
    if (spec.startsWith('RSA_')) this.checkSecretLength(Number(spec.slice(4)) / 2, `${spec} data key pairs`);
    const t = pairTemplates(spec, 'DATA_KEY_PAIR', undefined, false);
    return this.token.run('generate data key pair', async (session) => {
      const wrappingKey = this.secretKey(session, wrapWith, true)!;
      const pair = await this.token.pkcs11.C_GenerateKeyPairAsync(session, { mechanism: t.mechanism }, t.publicTemplate, t.privateTemplate);
      try {
        const publicKey = spkiOf(spec, this.publicMaterialOf(session, pair.publicKey, spec));
        let wrapped: Buffer;
        try {
          wrapped = await this.token.pkcs11.C_WrapKeyAsync(session, { mechanism: this.token.rfc5649 }, wrappingKey, pair.privateKey, Buffer.alloc(8192));
        } catch (err) {
          // SoftHSM2 2.6 wraps RSA and EC private keys but not Edwards-curve ones.
          if (ckrName(err) === 'CKR_KEY_NOT_WRAPPABLE') {
            throw new KmsError('UnsupportedOperationException', `The token cannot wrap ${spec} private keys, so it cannot make ${spec} data key pairs.`);
          }
          throw err;
        }
        return { publicKey, wrapped };
      } finally {
        this.token.pkcs11.C_DestroyObject(session, pair.privateKey);
        this.token.pkcs11.C_DestroyObject(session, pair.publicKey);
      }
    });
  }

  private publicMaterial(session: Session, ref: MaterialRef, spec: KeySpec): PublicKeyMaterial {
    return this.publicMaterialOf(session, this.requiredObject(session, ref, pkcs11js.CKO_PUBLIC_KEY), spec);
  }

  private publicMaterialOf(session: Session, handle: Buffer, spec: KeySpec): PublicKeyMaterial {
    const family = familyOf(spec);
    if (family === 'rsa') {
      const [n, e] = this.token.pkcs11.C_GetAttributeValue(session, handle, [{ type: pkcs11js.CKA_MODULUS }, { type: pkcs11js.CKA_PUBLIC_EXPONENT }]);
      return { family, modulus: n.value as Buffer, exponent: e.value as Buffer };
    }
    const [point] = this.token.pkcs11.C_GetAttributeValue(session, handle, [{ type: pkcs11js.CKA_EC_POINT }]);
    return { family: family === 'edwards' ? 'edwards' : 'ec', point: point.value as Buffer };
  }

  private requiredObject(session: Session, ref: MaterialRef, objectClass: number): Buffer {
    const handle = this.usable(session, ref, objectClass);
    if (!handle) throw materialNotFound(ref, objectClass);
    return handle;
  }

  /** The token object of one material. */
  private lookup(session: Session, ref: MaterialRef, objectClass: number): Buffer | undefined {
    return ref.creationId ? this.token.findCreation(session, ref.creationId, objectClass) : this.token.findObject(session, materialLabel(ref), objectClass);
  }

  /** The object to compute with: the token object, or its session copy (profile sessionCopies). */
  private usable(session: Session, ref: MaterialRef, objectClass: number): Buffer | undefined {
    return ref.creationId ? this.token.findForUse(session, ref.creationId, objectClass) : this.token.findObject(session, materialLabel(ref), objectClass);
  }

  /** C_Verify's answer: a bad signature is a `false`, anything else a failure. */
  private isIntegrityFailure(ckr: string | undefined): boolean {
    return ckr !== undefined && (this.token.profile.quirks.integrityFailureCodes?.includes(ckr) ?? false);
  }

  private async verdict(verification: Promise<boolean>): Promise<boolean> {
    try {
      return await verification;
    } catch (err) {
      const name = ckrName(err);
      if (name === 'CKR_SIGNATURE_INVALID' || name === 'CKR_SIGNATURE_LEN_RANGE' || this.isIntegrityFailure(name)) return false;
      throw err;
    }
  }

  private async unwrapToSession(session: Session, wrappingKey: Buffer, wrapped: Buffer, sensitive: boolean): Promise<Buffer> {
    try {
      return await this.token.pkcs11.C_UnwrapKeyAsync(
        session,
        { mechanism: this.token.rfc5649 },
        wrappingKey,
        wrapped,
        [
          { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
          { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_GENERIC_SECRET },
          { type: pkcs11js.CKA_TOKEN, value: false },
          { type: pkcs11js.CKA_SENSITIVE, value: sensitive },
          { type: pkcs11js.CKA_EXTRACTABLE, value: true },
        ],
      );
    } catch (err) {
      const name = ckrName(err);
      if (name === 'CKR_WRAPPED_KEY_INVALID' || name === 'CKR_WRAPPED_KEY_LEN_RANGE' || name === 'CKR_UNWRAPPING_KEY_HANDLE_INVALID' || name === 'CKR_GENERAL_ERROR') {
        throw invalidCiphertext();
      }
      throw err;
    }
  }

  private secretKey(session: Session, ref: MaterialRef, required: boolean): Buffer | undefined {
    const handle = this.usable(session, ref, pkcs11js.CKO_SECRET_KEY);
    if (!handle && required) throw materialNotFound(ref, pkcs11js.CKO_SECRET_KEY);
    return handle;
  }

  private isTagFailure(err: unknown): boolean {
    const name = ckrName(err);
    if (name === 'CKR_ENCRYPTED_DATA_INVALID' || name === 'CKR_ENCRYPTED_DATA_LEN_RANGE') return true;
    return name === 'CKR_GENERAL_ERROR' && this.token.profile.quirks.gcmTagFailureIsGeneralError;
  }
}

function sessionSecretTemplate(length: number, sensitive: boolean): pkcs11js.Template {
  return [
    { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
    { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_GENERIC_SECRET },
    { type: pkcs11js.CKA_TOKEN, value: false },
    { type: pkcs11js.CKA_VALUE_LEN, value: length },
    { type: pkcs11js.CKA_SENSITIVE, value: sensitive },
    { type: pkcs11js.CKA_EXTRACTABLE, value: true },
  ];
}

/** OAEP label source (PKCS#11 v2.40 §2.1.8); pkcs11js does not export it. */
const CKZ_DATA_SPECIFIED = 1;

const HMAC_MECHANISM: Record<string, number> = {
  HMAC_224: pkcs11js.CKM_SHA224_HMAC,
  HMAC_256: pkcs11js.CKM_SHA256_HMAC,
  HMAC_384: pkcs11js.CKM_SHA384_HMAC,
  HMAC_512: pkcs11js.CKM_SHA512_HMAC,
};


/** RFC 5649 adds an 8-byte integrity block (and at most 7 bytes of padding). */
const KWP_BLOCK = 8;

const RSA_DECRYPT_FAILURES = new Set(['CKR_ENCRYPTED_DATA_INVALID', 'CKR_ENCRYPTED_DATA_LEN_RANGE', 'CKR_DATA_INVALID', 'CKR_DATA_LEN_RANGE', 'CKR_GENERAL_ERROR']);

/** Length of a DER structure from its header (for self-delimiting wrapped PKCS#8 keys). */
function derTotalLength(der: Buffer): number | undefined {
  if (der.length < 2 || der[0] !== 0x30) return undefined;
  const first = der[1];
  if (first < 0x80) return 2 + first;
  const n = first & 0x7f;
  if (n < 1 || n > 3 || der.length < 2 + n) return undefined;
  let len = 0;
  for (let i = 0; i < n; i++) len = (len << 8) | der[2 + i];
  return 2 + n + len;
}

export { JWK_CURVE };

/**
 * The material a request read from the store is not in the token. Usually a concurrent
 * request destroyed it after changing the store (DeleteImportedKeyMaterial, an expiry, a
 * deletion): re-reading the key then gives the right answer, so the error says the request
 * may be retried from the start.
 */
function materialNotFound(ref: MaterialRef, objectClass: number): KmsError {
  return new KmsError('KeyUnavailableException', 'The key material is not available in the key store.', {
    internalDetail: `no token object of class ${objectClass} for ${materialLabel(ref)}${ref.creationId ? ` (creation ${ref.creationId})` : ''}`,
    staleRead: true,
  });
}

function invalidCiphertext(): KmsError {
  return new KmsError('InvalidCiphertextException', '');
}
