import * as pkcs11js from 'pkcs11js';
import { KmsError } from '../errors';
import type { KeySpec } from '../model/generated/types';
import { type ImportMaterialRequest, parseWrappingLabel, type WrappingKeySpec, type WrappingRef, wrappingLabel } from './import-wrapping';
import { familyOf, namingAttributes, type ObjectNaming } from './key-templates';
import { importPrivateKey } from './private-key-import';
import { spkiOf } from './public-keys';
import { checkValueOf, importSecret } from './secret-import';
import type { Token } from './token';
import { creationIdAttribute, listTokenObjects, retryingCreation } from './token-objects';

export {
  checkAsymmetricWrapping,
  type ImportMaterialRequest,
  importPath,
  parseWrappingLabel,
  type WrappingAlgorithm,
  WRAPPING_LABEL_PREFIX,
  type WrappingKeySpec,
  wrappingLabel,
  type WrappingRef,
} from './import-wrapping';

/**
 * Bring-your-own-key import (GetParametersForImport / ImportKeyMaterial) inside the token.
 *
 * The wrapping key pair is a token RSA pair labelled `p11kms-import:<key id>:<wrapping id>`;
 * its private half is sensitive, never extractable, and may only unwrap and decrypt.
 * Imported material is first unwrapped into a sensitive, non-extractable *session* object;
 * the token computes its key check value there, and only material the caller's decision
 * accepts is copied (C_CopyObject) into a token object with the material label, whose handle
 * this process keeps like a generated key's (object-lookup.ts `created`). Which
 * wrapping algorithms keep the material entirely inside the token: docs/key-custody.md.
 */

export class KeyImporter {
  constructor(private readonly token: Token) {}

  /** A fresh RSA wrapping pair in the token; returns the DER SPKI of its public half. */
  async generateWrappingKey(ref: WrappingRef, spec: WrappingKeySpec): Promise<Buffer> {
    // The wrapping id is random and never reused: it is the pair's creation id.
    const common: pkcs11js.Template = [{ type: pkcs11js.CKA_TOKEN, value: true }, ...namingAttributes({ label: wrappingLabel(ref), id: creationIdAttribute(ref.wrappingId) })];
    return this.token.run('generate import wrapping key', async (session) => {
      const pair = await this.token.pkcs11.C_GenerateKeyPairAsync(
        session,
        { mechanism: pkcs11js.CKM_RSA_PKCS_KEY_PAIR_GEN },
        [
          ...common,
          { type: pkcs11js.CKA_MODULUS_BITS, value: Number(spec.slice('RSA_'.length)) },
          { type: pkcs11js.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) },
          { type: pkcs11js.CKA_ENCRYPT, value: true },
          { type: pkcs11js.CKA_WRAP, value: true },
          { type: pkcs11js.CKA_VERIFY, value: false },
        ],
        [
          ...common,
          { type: pkcs11js.CKA_PRIVATE, value: true },
          { type: pkcs11js.CKA_SENSITIVE, value: true },
          { type: pkcs11js.CKA_EXTRACTABLE, value: false },
          { type: pkcs11js.CKA_UNWRAP, value: true },
          { type: pkcs11js.CKA_DECRYPT, value: true },
          { type: pkcs11js.CKA_SIGN, value: false },
        ],
      );
      // ImportKeyMaterial finds the private half by this creation id: kept, it searches nothing.
      this.token.lookup.created(ref.wrappingId, pkcs11js.CKO_PRIVATE_KEY, pair.privateKey);
      this.token.lookup.created(ref.wrappingId, pkcs11js.CKO_PUBLIC_KEY, pair.publicKey);
      const [n, e] = this.token.pkcs11.C_GetAttributeValue(session, pair.publicKey, [{ type: pkcs11js.CKA_MODULUS }, { type: pkcs11js.CKA_PUBLIC_EXPONENT }]);
      return spkiOf(spec as KeySpec, { family: 'rsa', modulus: n.value as Buffer, exponent: e.value as Buffer });
    }, retryingCreation(this.token, ref.wrappingId));
  }

  async destroyWrappingKey(ref: WrappingRef): Promise<boolean> {
    const label = wrappingLabel(ref);
    return this.token.run('destroy import wrapping key', async (session) => {
      const handles = await this.token.lookup.search(session, [{ type: pkcs11js.CKA_LABEL, value: label }]);
      for (const handle of handles) this.token.pkcs11.C_DestroyObject(session, handle);
      this.token.lookup.forgetObject(label, pkcs11js.CKO_PRIVATE_KEY);
      this.token.lookup.forgetObject(label, pkcs11js.CKO_PUBLIC_KEY);
      this.token.lookup.forgetCreation(ref.wrappingId);
      return handles.length > 0;
    });
  }

  async listWrappingKeys(): Promise<WrappingRef[]> {
    return this.token.run('list import wrapping keys', async (session) => {
      const refs = new Map<string, WrappingRef>();
      for (const { label } of await listTokenObjects(this.token, session)) {
        const ref = parseWrappingLabel(label);
        if (ref) refs.set(label, ref);
      }
      return [...refs.values()];
    }, { listing: true });
  }

  /**
   * Unwraps imported material into a sensitive session object, has the token compute its
   * key check value, and asks `decide` what to do: a naming makes it a new token object so
   * named (always a new one: its creation id is its own), undefined discards it. Returns the
   * check value and whether a token object was created.
   */
  async importMaterial(
    request: ImportMaterialRequest,
    decide: (checkValue: string) => ObjectNaming | undefined,
  ): Promise<{ checkValue: string; created: boolean }> {
    const family = familyOf(request.spec);
    if (family === 'rsa' || family === 'ec') return importPrivateKey(this.token, request, family, decide);
    if (family !== 'aes' && family !== 'hmac') {
      throw new KmsError('UnsupportedOperationException', `p11kms cannot import ${request.spec} key material.`);
    }
    return importSecret(this.token, request, family, decide);
  }

  /** The key check value of material already in the token (for tests and diagnostics). */
  async checkValue(label: string, spec: KeySpec): Promise<string> {
    return this.token.run('key check value', (session) => {
      const handle = this.token.lookup.findObject(session, label, pkcs11js.CKO_SECRET_KEY);
      if (!handle) throw new KmsError('KeyUnavailableException', 'The key material is not available in the key store.');
      return checkValueOf(this.token, session, handle, spec);
    });
  }
}
