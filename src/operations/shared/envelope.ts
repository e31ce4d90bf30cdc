import type { MaterialRef } from '../../custody/key-custody';
import type { KeyRecord } from '../../store/records';
import { materialRefOf } from './key-mutation';
import type { Services } from '../context';
import { custodyOf } from './custom-key-stores';
import { externalDecrypt, externalEncrypt, type Via } from './xks-layer';
import {
  additionalData,
  assemble,
  assembleExternal,
  parseCiphertext,
  encodeHeader,
  invalidCiphertext,
  type ParsedCiphertext,
  PayloadKind,
} from './ciphertext';

/** The payload a symmetric ciphertext carries, before sealing or after opening. */
export type Payload =
  | { kind: PayloadKind.Plaintext; plaintext: Buffer }
  /** A secret that exists in plaintext only inside the token: wrapped under the key's material. */
  | { kind: PayloadKind.WrappedSecret; wrapped: Buffer; length: number };

export function currentMaterial(key: KeyRecord): MaterialRef {
  return materialRef(key, key.currentVersion);
}

/** Finds a recorded version in the token by its creation id (by label for material older than creation ids). */
export function materialRef(key: KeyRecord, version: number): MaterialRef {
  const m = key.materials.find((x) => x.version === version);
  return m ? materialRefOf(key.keyId, m) : { keyId: key.keyId, version };
}

/**
 * Seals a payload under the key's current material, bound to the encryption context; for a
 * key of an external key store, the result is encrypted again by its external key.
 */
export async function seal(
  services: Services,
  via: Via,
  key: KeyRecord,
  context: Record<string, string> | undefined,
  payload: Payload,
): Promise<Buffer> {
  const material = currentMaterial(key);
  const header = encodeHeader({
    kind: payload.kind,
    keyId: key.keyId,
    materialVersion: material.version,
    secretLength: payload.kind === PayloadKind.WrappedSecret ? payload.length : 0,
  });
  const body = payload.kind === PayloadKind.Plaintext ? payload.plaintext : payload.wrapped;
  const { iv, sealed } = await custodyOf(services, key).encrypt(material, additionalData(header, context), body);
  const inner = assemble(header, iv, sealed);
  if (!key.xksKeyId) return inner;
  const outer = await externalEncrypt(services, via, key, header, inner);
  return assembleExternal(outer.header, outer.layer);
}

/** Opens a parsed ciphertext of `key`; a wrong context or any tampering fails in the token. */
export async function open(
  services: Services,
  via: Via,
  key: KeyRecord,
  outer: ParsedCiphertext,
  context: Record<string, string> | undefined,
): Promise<Payload> {
  // An external key store's key only ever made double-encrypted blobs, and no other key did.
  if ((outer.external !== undefined) !== (key.xksKeyId !== undefined)) throw invalidCiphertext();
  const parsed = outer.external ? parseCiphertext(await externalDecrypt(services, via, key, outer.header, outer.external)) : outer;
  if (parsed.external || !parsed.header.subarray(1).equals(outer.header.subarray(1))) throw invalidCiphertext();
  if (!key.materials.some((m) => m.version === parsed.materialVersion)) throw invalidCiphertext();
  const material = materialRef(key, parsed.materialVersion);
  const body = await custodyOf(services, key).decrypt(material, parsed.iv, additionalData(parsed.header, context), parsed.sealed);
  if (parsed.kind === PayloadKind.Plaintext) return { kind: PayloadKind.Plaintext, plaintext: body };
  return { kind: PayloadKind.WrappedSecret, wrapped: body, length: parsed.secretLength };
}

export function materialIdOf(key: KeyRecord, version: number): string | undefined {
  return key.materials.find((m) => m.version === version)?.materialId;
}
