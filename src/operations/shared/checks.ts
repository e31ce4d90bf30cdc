import { KmsError } from '../../errors';

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
