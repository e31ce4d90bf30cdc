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
  // The model's pattern admits ':'; the service does not.
  if (!/^alias\/[a-zA-Z0-9/_-]+$/.test(aliasName)) throw new KmsError('ValidationException', `${aliasName} contains invalid characters for an alias`);
}

/** CreateAlias / UpdateAlias: TargetKeyId must name a key, never an alias (AWS's ValidationException). */
export function checkAliasTarget(targetKeyId: string): void {
  if (targetKeyId.startsWith('alias/') || /^arn:aws[a-z-]*:kms:[^:]*:[^:]*:alias\//.test(targetKeyId)) {
    throw new KmsError('ValidationException', 'Aliases must refer to keys. Not aliases');
  }
}
