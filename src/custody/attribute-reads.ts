import type * as pkcs11js from 'pkcs11js';

/**
 * Attributes of one object in one call; attribute by attribute for an object that lacks one
 * (a creation torn by a crash, an object of another class): undefined for each it lacks.
 */
export function readAttributes(pkcs11: pkcs11js.PKCS11, session: Buffer, object: Buffer, types: readonly number[]): Array<Buffer | undefined> {
  try {
    return pkcs11.C_GetAttributeValue(session, object, types.map((type) => ({ type }))).map((a) => a.value as Buffer | undefined);
  } catch {
    return types.map((type) => {
      try {
        return pkcs11.C_GetAttributeValue(session, object, [{ type }])[0].value as Buffer | undefined;
      } catch {
        // CKR_ATTRIBUTE_TYPE_INVALID: the object has none.
        return undefined;
      }
    });
  }
}
