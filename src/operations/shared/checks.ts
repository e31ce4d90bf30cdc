import { KmsError } from '../../errors';
import type { KeyRecord } from '../../store/records';

/** DryRun: every check has passed; AWS answers with this exception instead of acting. */
export function stopIfDryRun(dryRun: boolean | undefined): void {
  if (dryRun) throw new KmsError('DryRunOperationException', 'The request would have succeeded, but the DryRun option is set.');
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

/**
 * Data keys and data key pairs are sealed by a symmetric encryption key only: an RSA key has
 * the ENCRYPT_DECRYPT usage but no AES material to seal with.
 */
export function requireSymmetricEncryptionKey(key: KeyRecord, operation: string): void {
  if (key.keySpec !== 'SYMMETRIC_DEFAULT') {
    throw new KmsError('InvalidKeyUsageException', `${key.arn} key spec ${key.keySpec} is not valid for ${operation}; use a symmetric encryption KMS key.`);
  }
}
