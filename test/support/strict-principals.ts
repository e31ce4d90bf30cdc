import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CreateKeyCommand, type CreateKeyCommandInput, type KeyMetadata, type KMSClient } from '@aws-sdk/client-kms';
import { administrators, serverPerSuite } from './server';

/**
 * The principals, identity policies and key-policy helpers the strict-mode access tests
 * share (access-control.test.ts, grants.test.ts): two accounts, users, a role session.
 */

export const A = '111122223333';
export const B = '444455556666';

export interface Principal {
  accessKeyId: string;
  secretAccessKey: string;
  accountId: string;
  principalArn: string;
}
const p = (id: string, accountId: string, principalArn: string): Principal => ({ accessKeyId: id, secretAccessKey: `${id}-secret`, accountId, principalArn });
export const ADMIN = p('AKIAADMIN00000000001', A, `arn:aws:iam::${A}:user/admin`);
export const ROOT_A = p('AKIAROOTA0000000001', A, `arn:aws:iam::${A}:root`);
export const APP = p('ASIAAPP000000000001', A, `arn:aws:sts::${A}:assumed-role/billing-app/i-0abc`);
export const AUDITOR = p('AKIAAUDITOR00000001', A, `arn:aws:iam::${A}:user/auditor`);
export const BOB = p('AKIABOB000000000001', B, `arn:aws:iam::${B}:user/bob`);
export const CAROL = p('AKIACAROL0000000001', B, `arn:aws:iam::${B}:user/carol`);
export const DAVE = p('AKIADAVE00000000001', A, `arn:aws:iam::${A}:user/dave`);
export const EVE = p('AKIAEVE000000000001', A, `arn:aws:iam::${A}:user/staff/eve`);
export const ROOT_B = p('AKIAROOTB0000000001', B, `arn:aws:iam::${B}:root`);
/** kms:* in identity policies, but an identity-policy Deny of kms:RetireGrant. */
export const FRANK = p('AKIAFRANK0000000001', A, `arn:aws:iam::${A}:user/frank`);
/** Only kms:RetireGrant in identity policies (AWS: delegation of the account's right to retire). */
export const GRACE = p('AKIAGRACE0000000001', B, `arn:aws:iam::${B}:user/grace`);

const PRINCIPALS = { ADMIN, ROOT_A, ROOT_B, APP, AUDITOR, BOB, CAROL, DAVE, EVE, FRANK, GRACE };

const identityPolicies = {
  ...administrators(ADMIN.principalArn, BOB.principalArn),
  // Policy variables: eve may encrypt only with her own name and her team in the encryption
  // context, and create aliases named after herself.
  [EVE.principalArn]: {
    Version: '2012-10-17',
    Statement: [
      {
        Effect: 'Allow',
        Action: 'kms:Encrypt',
        Resource: 'arn:aws:kms:*:${aws:PrincipalAccount}:key/*',
        Condition: { StringEquals: { 'kms:EncryptionContext:owner': '${aws:username}', 'kms:EncryptionContext:team': '${aws:PrincipalTag/team}' } },
      },
      { Effect: 'Allow', Action: 'kms:CreateAlias', Resource: ['arn:aws:kms:*:${aws:PrincipalAccount}:alias/${aws:username}-*', 'arn:aws:kms:*:*:key/*'] },
    ],
  },
  [AUDITOR.principalArn]: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'kms:DescribeKey', Resource: '*' }] },
  [CAROL.principalArn]: [
    { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['kms:Decrypt', 'kms:DescribeKey'], Resource: `arn:aws:kms:*:${A}:key/*` }] },
    { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'kms:ListRetirableGrants', Resource: '*' }] },
  ],
  [FRANK.principalArn]: [
    administrators(FRANK.principalArn)[FRANK.principalArn],
    { Version: '2012-10-17', Statement: [{ Effect: 'Deny', Action: 'kms:RetireGrant', Resource: '*' }] },
  ],
  [GRACE.principalArn]: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'kms:RetireGrant', Resource: '*' }] },
};

export function writeCredentials(): string {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'p11kms-access-')), 'credentials.json');
  fs.writeFileSync(file, JSON.stringify({ accessKeys: Object.values(PRINCIPALS), identityPolicies, principalTags: { [EVE.principalArn]: { team: 'billing' } } }));
  return file;
}

export const policy = (...statements: Record<string, unknown>[]) =>
  JSON.stringify({ Version: '2012-10-17', Statement: statements.map((s) => ({ Effect: 'Allow', Resource: '*', ...s })) });
export const adminStatement = { Sid: 'admin', Principal: { AWS: ADMIN.principalArn }, Action: 'kms:*' };
export const rootStatement = { Sid: 'root', Principal: { AWS: `arn:aws:iam::${A}:root` }, Action: 'kms:*' };
export const denied = (who: Principal, action: string, arn: string, why = `because no resource-based policy allows the ${action} action`) =>
  `User: ${who.principalArn} is not authorized to perform: ${action} on resource: ${arn} ${why}`;

type Clients = Record<keyof typeof PRINCIPALS, KMSClient>;

/**
 * Registers before/after hooks in the calling describe: a strict-mode server with the
 * principals above, one SDK client per principal, and CreateKey (by the administrator).
 */
export function strictServer(): { c: Clients; createKey(input?: CreateKeyCommandInput, client?: KMSClient): Promise<KeyMetadata> } {
  // Filled in by the before hook; the object itself is handed out at once.
  const c = {} as Clients;
  serverPerSuite(() => ({ auth: 'strict', credentialsFile: writeCredentials() }), (started) => {
    Object.assign(c, Object.fromEntries(Object.entries(PRINCIPALS).map(([name, who]) => [name, started.client(who)])));
  });
  return {
    c,
    async createKey(input = {}, client = c.ADMIN) {
      const { KeyMetadata } = await client.send(new CreateKeyCommand(input));
      return KeyMetadata!;
    },
  };
}
