import { KmsError } from '../../errors';
import type { KeyRecord } from '../../store/records';

/** DryRun: every check has passed; AWS answers with this exception instead of acting. */
export function stopIfDryRun(dryRun: boolean | undefined): void {
  if (dryRun) throw new KmsError('DryRunOperationException', 'The request would have succeeded, but the DryRun option is set.');
}

/** Symmetric keys only take SYMMETRIC_DEFAULT (asymmetric algorithms arrive with issue #3). */
export function requireEncryptionAlgorithm(key: KeyRecord, algorithm: string | undefined): void {
  if (algorithm === undefined || algorithm === 'SYMMETRIC_DEFAULT') {
    if (key.keySpec === 'SYMMETRIC_DEFAULT') return;
  }
  throw new KmsError('InvalidKeyUsageException', `Algorithm ${algorithm ?? 'SYMMETRIC_DEFAULT'} is incompatible with key spec ${key.keySpec}.`);
}

export function refuseRecipient(recipient: unknown): void {
  if (recipient !== undefined) {
    throw new KmsError('UnsupportedOperationException', 'Recipient (Nitro Enclaves attestation) is not supported by p11kms.');
  }
}

/** Data key length from KeySpec or NumberOfBytes; exactly one of them is required. */
export function dataKeyLength(keySpec: string | undefined, numberOfBytes: number | undefined): number {
  if ((keySpec === undefined) === (numberOfBytes === undefined)) {
    throw new KmsError('ValidationException', 'Please specify either number of bytes or key spec.');
  }
  if (numberOfBytes !== undefined) return numberOfBytes;
  return keySpec === 'AES_128' ? 16 : 32;
}
