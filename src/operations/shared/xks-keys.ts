import { KmsError } from '../../errors';
import type { CustomKeyStoreRecord } from '../../store/records';
import type { RequestContext, Services } from '../context';

/** CreateKey's check of an external key at the store's XKS proxy (GetKeyMetadata). */
export async function checkExternalKey(_services: Services, _ctx: RequestContext, _store: CustomKeyStoreRecord, _xksKeyId: string): Promise<void> {
  throw new KmsError('UnsupportedOperationException', 'External key stores are not available in this deployment.');
}
