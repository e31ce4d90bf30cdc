import { KmsError } from '../../errors';
import type { KeyCustody } from '../../custody/key-custody';
import type { KeySpec, KeyUsageType, OriginType } from '../../model/generated/types';
import type { RequestContext, Services } from '../context';
import { custodyOf, findCustomKeyStore, keyStoresOf } from './custom-key-stores';
import { checkExternalKey } from './xks-layer';

/** Where CreateKey puts a key of a custom key store, and what its record says about it. */
export interface Placement {
  custody: KeyCustody;
  fields: { customKeyStoreId: string; xksKeyId?: string };
}

/**
 * CreateKey's checks for a key in a custom key store (AWS's rules: symmetric encryption
 * keys only, no multi-Region keys, the origin matching the store's type, the store
 * CONNECTED, an external key that exists and can encrypt and decrypt). Undefined for a key
 * of the main token.
 */
export async function placementOf(
  services: Services,
  ctx: RequestContext,
  input: { CustomKeyStoreId?: string; XksKeyId?: string; MultiRegion?: boolean },
  keySpec: KeySpec,
  keyUsage: KeyUsageType,
  origin: OriginType,
): Promise<Placement | undefined> {
  const custom = origin === 'AWS_CLOUDHSM' || origin === 'EXTERNAL_KEY_STORE';
  if (input.XksKeyId !== undefined && origin !== 'EXTERNAL_KEY_STORE') {
    throw new KmsError('ValidationException', 'XksKeyId is valid only for keys with Origin EXTERNAL_KEY_STORE.');
  }
  if (!custom) {
    if (input.CustomKeyStoreId !== undefined) {
      throw new KmsError('ValidationException', `Origin ${origin} is not valid with a CustomKeyStoreId: use AWS_CLOUDHSM or EXTERNAL_KEY_STORE.`);
    }
    return undefined;
  }
  if (input.CustomKeyStoreId === undefined) throw new KmsError('ValidationException', `Origin ${origin} needs a CustomKeyStoreId.`);
  if (origin === 'EXTERNAL_KEY_STORE' && input.XksKeyId === undefined) throw new KmsError('ValidationException', 'Origin EXTERNAL_KEY_STORE needs an XksKeyId.');
  keyStoresOf(services);
  const store = await findCustomKeyStore(services, ctx, input.CustomKeyStoreId);
  if ((store.type === 'AWS_CLOUDHSM') !== (origin === 'AWS_CLOUDHSM')) {
    throw new KmsError('ValidationException', `Origin ${origin} does not match custom key store ${store.customKeyStoreId} of type ${store.type}.`);
  }
  if (keySpec !== 'SYMMETRIC_DEFAULT' || keyUsage !== 'ENCRYPT_DECRYPT') {
    throw new KmsError('UnsupportedOperationException', `KMS keys in custom key stores must be symmetric encryption keys (SYMMETRIC_DEFAULT, ENCRYPT_DECRYPT), not ${keySpec}.`);
  }
  if (input.MultiRegion) throw new KmsError('UnsupportedOperationException', 'Multi-Region keys cannot be created in a custom key store.');
  // Connected through another process a moment ago: this one's attempt is under way.
  await services.keyStores!.settled(store.customKeyStoreId);
  if (!services.keyStores!.isConnected(store.customKeyStoreId)) {
    throw new KmsError('CustomKeyStoreInvalidStateException', `Custom key store ${store.customKeyStoreId} is not connected; connect it before creating keys in it.`);
  }
  const fields = { customKeyStoreId: store.customKeyStoreId, ...(input.XksKeyId !== undefined ? { xksKeyId: input.XksKeyId } : {}) };
  if (origin === 'EXTERNAL_KEY_STORE') await checkExternalKey(services, ctx, store, input.XksKeyId!);
  return { custody: custodyOf(services, { ...fields, origin } as Parameters<typeof custodyOf>[1]), fields };
}
