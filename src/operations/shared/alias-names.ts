import { KmsError } from '../../errors';

/** AWS's rules for alias names beyond the model's pattern and length. */
export function checkAliasName(aliasName: string): void {
  if (!aliasName.startsWith('alias/')) {
    throw new KmsError(
      'ValidationException',
      'Alias must start with the prefix "alias/". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html',
    );
  }
  if (aliasName.startsWith('alias/aws/')) {
    throw new KmsError('InvalidAliasNameException', 'Alias names beginning with alias/aws/ are reserved for AWS managed keys.');
  }
  if (aliasName === 'alias/') throw new KmsError('InvalidAliasNameException', 'Alias name must not be empty after the prefix "alias/".');
}
