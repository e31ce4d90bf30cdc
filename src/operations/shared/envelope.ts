import type { MaterialRef, OperationStep } from '../../custody/key-custody';
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
  /** `continuing` after the operation's earlier token work: not shed (OperationStep). */
  step: OperationStep = 'first',
): Promise<Buffer> {
  const body = payload.kind === PayloadKind.Plaintext ? payload.plaintext : payload.wrapped;
  return sealWith(services, via, key, context, payload.kind, payload.kind === PayloadKind.WrappedSecret ? payload.length : 0, (material, aad) =>
    custodyOf(services, key).symmetric.encrypt(material, aad, body, step),
  );
}

/**
 * A new data key of `length` bytes from the key's token, and its ciphertext (GenerateDataKey):
 * the secret and the IV come from one draw of the token's RNG, in the session that seals them.
 */
export async function sealNewDataKey(
  services: Services,
  via: Via,
  key: KeyRecord,
  context: Record<string, string> | undefined,
  length: number,
): Promise<{ blob: Buffer; plaintext: Buffer }> {
  let plaintext: Buffer | undefined;
  try {
    const blob = await sealWith(services, via, key, context, PayloadKind.Plaintext, 0, async (material, aad) => {
      const made = await custodyOf(services, key).symmetric.encryptNewSecret(material, aad, length);
      plaintext = made.plaintext;
      return made;
    });
    return { blob, plaintext: plaintext! };
  } catch (err) {
    plaintext?.fill(0);
    throw err;
  }
}

async function sealWith(
  services: Services,
  via: Via,
  key: KeyRecord,
  context: Record<string, string> | undefined,
  kind: PayloadKind,
  secretLength: number,
  encrypt: (material: MaterialRef, aad: Buffer) => Promise<{ iv: Buffer; sealed: Buffer }>,
): Promise<Buffer> {
  const material = currentMaterial(key);
  const header = encodeHeader({ kind, keyId: key.keyId, materialVersion: material.version, secretLength });
  const { iv, sealed } = await encrypt(material, additionalData(header, context));
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
  const body = await custodyOf(services, key).symmetric.decrypt(material, parsed.iv, additionalData(parsed.header, context), parsed.sealed);
  if (parsed.kind === PayloadKind.Plaintext) return { kind: PayloadKind.Plaintext, plaintext: body };
  return { kind: PayloadKind.WrappedSecret, wrapped: body, length: parsed.secretLength };
}

export function materialIdOf(key: KeyRecord, version: number): string | undefined {
  return key.materials.find((m) => m.version === version)?.materialId;
}
