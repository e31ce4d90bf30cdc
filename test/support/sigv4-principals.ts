/**
 * The access keys the SigV4 suites sign with (sigv4.test.ts, signed-headers.test.ts): two
 * long-term keys in two accounts and one assumed-role session, whose token is part of its
 * credentials.
 */
export const ALICE = { accessKeyId: 'AKIAALICE0000000001', secretAccessKey: 'alice-secret', accountId: '111122223333', principalArn: 'arn:aws:iam::111122223333:user/alice' };
export const BOB = { accessKeyId: 'AKIABOB00000000002', secretAccessKey: 'bob-secret', accountId: '444455556666', principalArn: 'arn:aws:iam::444455556666:user/bob' };
export const SESSION = {
  accessKeyId: 'ASIASESSION00000003',
  secretAccessKey: 'session-secret',
  sessionToken: 'FwoGZXIvYXdzEXAMPLEsessiontoken',
  accountId: '111122223333',
  principalArn: 'arn:aws:sts::111122223333:assumed-role/app/session-1',
};
