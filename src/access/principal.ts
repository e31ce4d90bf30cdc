/** Who is calling, as established by the wire layer's authentication. */
export interface Caller {
  accountId: string;
  /** e.g. arn:aws:iam::111122223333:user/alice or arn:aws:iam::111122223333:root */
  principalArn: string;
  accessKeyId: string;
  /** aws:userid when the credentials file names it (IAM's unique id); see userIdOf. */
  userId?: string;
  /**
   * The request was signed with temporary credentials (an access key listed with its session
   * token): IAM then puts aws:MultiFactorAuthPresent in the request context.
   */
  temporaryCredentials?: true;
}
