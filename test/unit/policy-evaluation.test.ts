import { expect } from 'chai';
import { authorizeKeyAction, authorizeRetireGrant, checkPolicyLockout, type AccessControl } from '../../src/access/authorize';
import { conditionValuesOf } from '../../src/access/condition-keys';
import { type ConditionValues, evaluateCondition, globMatch } from '../../src/access/condition-operators';
import { anotherGrantToken, checkGrantRequest, constraintsHold, grantAllows, grantIdOfToken, grantMayDelegate, newGrantId, newGrantToken, tokenNamesGrant } from '../../src/access/grants';
import { parsePolicy, policyFromJson } from '../../src/access/policy-document';
import { actionMatches, evaluateKeyPolicy } from '../../src/access/policy-evaluation';
import type { Caller } from '../../src/access/principal';
import { PrincipalDirectory } from '../../src/access/principal-directory';
import { matchPrincipal } from '../../src/access/principal-matching';
import type { GrantRecord } from '../../src/store/grant-record';
import type { KeyRecord } from '../../src/store/records';

const A = '111122223333';
const B = '444455556666';
const ALICE: Caller = { accountId: A, principalArn: `arn:aws:iam::${A}:user/alice`, accessKeyId: 'AKIAALICE' };
const ROOT_A: Caller = { accountId: A, principalArn: `arn:aws:iam::${A}:root`, accessKeyId: 'AKIAROOT' };
const SESSION: Caller = { accountId: A, principalArn: `arn:aws:sts::${A}:assumed-role/app/i-123`, accessKeyId: 'ASIAAPP' };
const BOB: Caller = { accountId: B, principalArn: `arn:aws:iam::${B}:user/bob`, accessKeyId: 'AKIABOB' };

function values(entries: Record<string, string | string[]>): ConditionValues {
  return new Map(Object.entries(entries).map(([k, v]) => [k.toLowerCase(), Array.isArray(v) ? v : [v]]));
}

describe('policy evaluation (unit)', function () {
  describe('condition operators', function () {
    // [operator, key, policy values, request values (undefined = key absent), expected]
    const table: Array<[string, string, string[], string[] | undefined, boolean]> = [
      ['StringEquals', 'k', ['a'], ['a'], true],
      ['StringEquals', 'k', ['a', 'b'], ['b'], true],
      ['StringEquals', 'k', ['a'], ['A'], false],
      ['StringEquals', 'k', ['a'], undefined, false],
      ['StringNotEquals', 'k', ['a'], ['b'], true],
      ['StringNotEquals', 'k', ['a', 'b'], ['b'], false],
      ['StringNotEquals', 'k', ['a'], undefined, true],
      ['StringEqualsIgnoreCase', 'k', ['ABC'], ['abc'], true],
      ['StringNotEqualsIgnoreCase', 'k', ['ABC'], ['abc'], false],
      ['StringNotEqualsIgnoreCase', 'k', ['ABC'], ['abd'], true],
      ['StringLike', 'k', ['app-*'], ['app-billing'], true],
      ['StringLike', 'k', ['app-?'], ['app-12'], false],
      ['StringLike', 'k', ['a*c*e'], ['abcde'], true],
      ['StringNotLike', 'k', ['app-*'], ['web-1'], true],
      ['StringNotLike', 'k', ['app-*'], ['app-1'], false],
      ['StringEqualsIfExists', 'k', ['a'], undefined, true],
      ['StringEqualsIfExists', 'k', ['a'], ['b'], false],
      ['Bool', 'k', ['true'], ['true'], true],
      ['Bool', 'k', ['true'], ['false'], false],
      ['Bool', 'k', ['false'], ['FALSE'], true],
      ['Null', 'k', ['true'], undefined, true],
      ['Null', 'k', ['true'], ['x'], false],
      ['Null', 'k', ['false'], ['x'], true],
      ['Null', 'k', ['false'], undefined, false],
      ['NumericEquals', 'k', ['90'], ['90'], true],
      ['NumericNotEquals', 'k', ['90'], ['91'], true],
      ['NumericLessThan', 'k', ['100'], ['90'], true],
      ['NumericLessThan', 'k', ['90'], ['90'], false],
      ['NumericLessThanEquals', 'k', ['90'], ['90'], true],
      ['NumericGreaterThan', 'k', ['90'], ['365'], true],
      ['NumericGreaterThanEquals', 'k', ['365'], ['180'], false],
      ['NumericEquals', 'k', ['90'], ['ninety'], false],
      ['DateLessThan', 'k', ['2030-01-01T00:00:00Z'], ['2026-05-01T12:00:00.000Z'], true],
      ['DateGreaterThan', 'k', ['2030-01-01T00:00:00Z'], ['2026-05-01T12:00:00.000Z'], false],
      ['DateEquals', 'k', ['1700000000'], ['2023-11-14T22:13:20Z'], true],
      ['DateNotEquals', 'k', ['2023-11-14T22:13:20Z'], ['2023-11-14T22:13:21Z'], true],
      ['DateLessThanEquals', 'k', ['2023-11-14T22:13:20Z'], ['2023-11-14T22:13:20Z'], true],
      ['DateGreaterThanEquals', 'k', ['2023-11-14T22:13:20Z'], ['2023-11-14T22:13:19Z'], false],
      ['ArnLike', 'k', [`arn:aws:iam::${A}:user/*`], [`arn:aws:iam::${A}:user/alice`], true],
      ['ArnLike', 'k', [`arn:aws:iam::${A}:user/*`], [`arn:aws:iam::${B}:user/bob`], false],
      ['ArnEquals', 'k', [`arn:aws:iam::${A}:role/app`], [`arn:aws:iam::${A}:role/app`], true],
      ['ArnEquals', 'k', [`arn:aws:iam::*:role/app`], [`arn:aws:iam::${B}:role/app`], true],
      ['ArnNotEquals', 'k', [`arn:aws:iam::${A}:role/app`], [`arn:aws:iam::${A}:role/web`], true],
      ['ArnNotLike', 'k', [`arn:aws:iam::${A}:*`], [`arn:aws:iam::${A}:user/alice`], false],
      ['ArnLike', 'k', ['not-an-arn'], [`arn:aws:iam::${A}:user/alice`], false],
      ['IpAddress', 'k', ['10.0.0.0/8'], ['10.1.2.3'], true],
      ['IpAddress', 'k', ['10.0.0.0/8'], ['192.168.0.1'], false],
      ['IpAddress', 'k', ['127.0.0.1/32'], ['::ffff:127.0.0.1'], true],
      ['IpAddress', 'k', ['::1/128'], ['::1'], true],
      ['NotIpAddress', 'k', ['10.0.0.0/8'], ['192.168.0.1'], true],
      ['ForAnyValue:StringEquals', 'k', ['purpose'], ['app', 'purpose'], true],
      ['ForAnyValue:StringEquals', 'k', ['purpose'], ['app'], false],
      ['ForAnyValue:StringEquals', 'k', ['purpose'], undefined, false],
      ['ForAllValues:StringEquals', 'k', ['app', 'purpose'], ['app'], true],
      ['ForAllValues:StringEquals', 'k', ['app'], ['app', 'other'], false],
      ['ForAllValues:StringEquals', 'k', ['app'], undefined, true],
      ['ForAllValues:StringLike', 'k', ['a*'], ['ab', 'ac'], true],
      ['ForAnyValue:StringNotEquals', 'k', ['a'], ['a', 'b'], true],
      ['ForAllValues:StringNotEquals', 'k', ['a'], ['a', 'b'], false],
      ['ForAnyValue:StringEqualsIgnoreCase', 'k', ['APP'], ['app'], true],
      ['StringEquals', 'k', ['Encrypt'], ['Decrypt', 'Encrypt'], true],
      ['StringNotEquals', 'k', ['Encrypt'], ['Decrypt', 'Encrypt'], false],
      ['NumericLessThanIfExists', 'k', ['100'], undefined, true],
    ];
    for (const [operator, key, policyValues, request, expected] of table) {
      it(`${operator} ${JSON.stringify(policyValues)} against ${request === undefined ? 'an absent key' : JSON.stringify(request)} → ${expected}`, function () {
        const v = request === undefined ? values({}) : values({ [key]: request });
        expect(evaluateCondition(operator, key, policyValues, v)).to.equal(expected);
      });
    }

    it('matches condition keys case-insensitively', function () {
      expect(evaluateCondition('StringEquals', 'KMS:CallerAccount', [A], values({ 'kms:calleraccount': A }))).to.equal(true);
    });

    it('globMatch handles stars and question marks without backtracking blow-up', function () {
      expect(globMatch('*a*a*a*a*a*b', 'a'.repeat(5000))).to.equal(false);
      expect(globMatch('k?y', 'key')).to.equal(true);
    });
  });

  describe('actions, principals', function () {
    const actions: Array<[string, string, boolean]> = [
      ['kms:*', 'kms:Decrypt', true],
      ['*', 'kms:Decrypt', true],
      ['kms:ReEncrypt*', 'kms:ReEncryptFrom', true],
      ['kms:ReEncrypt*', 'kms:Encrypt', false],
      ['kms:decrypt', 'kms:Decrypt', true],
      ['kms:Describe*', 'kms:DescribeKey', true],
      ['kms:Encrypt', 'kms:EncryptX', false],
    ];
    for (const [pattern, action, expected] of actions) {
      it(`action ${pattern} ${expected ? 'matches' : 'does not match'} ${action}`, function () {
        expect(actionMatches(pattern, action)).to.equal(expected);
      });
    }

    const principals: Array<[string, Caller, string]> = [
      ['*', BOB, 'direct'],
      [A, ALICE, 'account'],
      [`arn:aws:iam::${A}:root`, ALICE, 'account'],
      [`arn:aws:iam::${A}:root`, ROOT_A, 'direct'],
      [`arn:aws:iam::${A}:root`, BOB, 'none'],
      [`arn:aws:iam::${A}:user/alice`, ALICE, 'direct'],
      [`arn:aws:iam::${A}:user/alice`, SESSION, 'none'],
      [`arn:aws:iam::${A}:role/app`, SESSION, 'direct'],
      [`arn:aws:sts::${A}:assumed-role/app/i-123`, SESSION, 'direct'],
      [`arn:aws:sts::${A}:assumed-role/app/other`, SESSION, 'none'],
    ];
    for (const [principal, caller, expected] of principals) {
      it(`principal ${principal} vs ${caller.principalArn} → ${expected}`, function () {
        expect(matchPrincipal(principal, caller)).to.equal(expected);
      });
    }
  });

  describe('policy documents', function () {
    const bad: Array<[string, string, RegExp]> = [
      ['not JSON', '{', /not valid JSON/],
      ['an unknown top-level field', JSON.stringify({ Statement: [], Foo: 1 }), /unknown field 'Foo'/],
      ['no statements', JSON.stringify({ Version: '2012-10-17', Statement: [] }), /at least one Statement/],
      ['an unknown statement field', JSON.stringify({ Statement: [{ Effect: 'Allow', Principal: '*', Action: 'kms:*', Resource: '*', Extra: 1 }] }), /unknown field 'Extra'/],
      ['a bad effect', JSON.stringify({ Statement: [{ Effect: 'allow', Principal: '*', Action: 'kms:*', Resource: '*' }] }), /invalid Effect/],
      ['a malformed principal', JSON.stringify({ Statement: [{ Effect: 'Allow', Principal: { AWS: 'alice' }, Action: 'kms:*', Resource: '*' }] }), /invalid principals/],
      ['an unknown condition operator', JSON.stringify({ Statement: [{ Effect: 'Allow', Principal: '*', Action: 'kms:*', Resource: '*', Condition: { StringMaybe: { 'kms:CallerAccount': A } } }] }), /unknown condition operator/],
      ['a non-kms action', JSON.stringify({ Statement: [{ Effect: 'Allow', Principal: '*', Action: 's3:GetObject', Resource: '*' }] }), /invalid action/],
      ['both Resource and NotResource', JSON.stringify({ Statement: [{ Effect: 'Allow', Principal: '*', Action: 'kms:*', Resource: '*', NotResource: '*' }] }), /must not have both Resource and NotResource/],
      ['a bad Version', JSON.stringify({ Version: '2020-01-01', Statement: [{ Effect: 'Allow', Principal: '*', Action: 'kms:*', Resource: '*' }] }), /Version/],
    ];
    for (const [what, text, message] of bad) {
      it(`rejects a key policy with ${what}`, function () {
        let caught: unknown;
        try {
          parsePolicy(text, 'key');
        } catch (err) {
          caught = err;
        }
        expect((caught as Error).name).to.equal('MalformedPolicyDocumentException');
        expect((caught as Error).message).to.match(message);
      });
    }

    it('rejects principals the directory does not know', function () {
      const directory = new PrincipalDirectory([{ accountId: A, principalArn: ALICE.principalArn }]);
      const doc = (p: string) => JSON.stringify({ Statement: [{ Effect: 'Allow', Principal: { AWS: p }, Action: 'kms:*', Resource: '*' }] });
      const opts = { principalExists: (p: string) => directory.principalExists(p) };
      expect(() => parsePolicy(doc(ALICE.principalArn), 'key', opts)).not.to.throw();
      expect(() => parsePolicy(doc(A), 'key', opts)).not.to.throw();
      expect(() => parsePolicy(doc(`arn:aws:iam::${A}:user/mallory`), 'key', opts)).to.throw(/invalid principals/);
      expect(() => parsePolicy(doc(`arn:aws:iam::${B}:root`), 'key', opts)).to.throw(/invalid principals/);
    });

    it('rejects a Principal in an identity policy', function () {
      expect(() => policyFromJson({ Statement: [{ Effect: 'Allow', Principal: '*', Action: 'kms:*', Resource: '*' }] }, 'identity')).to.throw(/must not have a Principal/);
    });

    it('an identity policy statement still needs Action and Resource (IAM refuses it); a key policy statement without them applies to nothing', function () {
      expect(() => policyFromJson({ Statement: [{ Effect: 'Allow', Action: 'kms:*' }] }, 'identity')).to.throw(/exactly one of Resource or NotResource/);
      expect(() => policyFromJson({ Statement: [{ Effect: 'Allow', Resource: '*' }] }, 'identity')).to.throw(/exactly one of Action or NotAction/);
      const doc = parsePolicy(JSON.stringify({ Statement: [{ Effect: 'Allow', Principal: '*', Action: 'kms:*' }, { Effect: 'Deny', Principal: '*', Resource: '*' }] }), 'key');
      const request = { caller: ALICE, action: 'kms:Encrypt', resource: `arn:aws:kms:us-east-1:${A}:key/k`, values: values({}) };
      expect(evaluateKeyPolicy(doc, request)).to.deep.equal({ deny: false, allow: 'none' });
    });
  });

  describe('evaluation order', function () {
    const key: KeyRecord = {
      keyId: '1234abcd-12ab-34cd-56ef-1234567890ab',
      region: 'us-east-1',
      accountId: A,
      arn: `arn:aws:kms:us-east-1:${A}:key/1234abcd-12ab-34cd-56ef-1234567890ab`,
      createdAt: 0,
      description: '',
      keySpec: 'SYMMETRIC_DEFAULT',
      keyUsage: 'ENCRYPT_DECRYPT',
      origin: 'AWS_KMS',
      keyState: 'Enabled',
      materials: [],
      currentVersion: 1,
      tags: [{ TagKey: 'team', TagValue: 'billing' }],
      policy: '',
    };
    const stmt = (s: Record<string, unknown>) => ({ Effect: 'Allow', Resource: '*', ...s });
    const withPolicy = (...statements: Record<string, unknown>[]): KeyRecord => ({ ...key, policy: JSON.stringify({ Version: '2012-10-17', Statement: statements.map(stmt) }) });
    const rootAll = { Principal: { AWS: `arn:aws:iam::${A}:root` }, Action: 'kms:*' };
    const access = (identity: Record<string, unknown[]> = {}): AccessControl => ({
      enforce: true,
      directory: new PrincipalDirectory(
        [ALICE, ROOT_A, SESSION, BOB],
        new Map(Object.entries(identity).map(([arn, docs]) => [arn, docs.map((d) => policyFromJson(d, 'identity'))])),
      ),
    });
    function decide(a: AccessControl, caller: Caller, action: string, k: KeyRecord, request: { encryptionContext?: Record<string, string> } = {}, grants: GrantRecord[] = []): string {
      const v = conditionValuesOf({ caller, region: 'us-east-1', now: Date.parse('2026-01-01T00:00:00Z'), sourceIp: '127.0.0.1', key: k, request });
      try {
        authorizeKeyAction(a, { caller, action, key: k, values: v, request, grants });
        return 'allow';
      } catch (err) {
        return (err as Error).message;
      }
    }

    const ADMIN_POLICY = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'kms:*', Resource: '*' }] };

    it('the default policy (account root): a user without identity policies gets nothing, the root everything, an administrator policy restores the user', function () {
      expect(decide(access(), ALICE, 'kms:Decrypt', withPolicy(rootAll))).to.equal(
        `User: ${ALICE.principalArn} is not authorized to perform: kms:Decrypt on resource: ${key.arn} because no identity-based policy allows the kms:Decrypt action`,
      );
      expect(decide(access(), SESSION, 'kms:Decrypt', withPolicy(rootAll))).to.match(/no identity-based policy allows/);
      expect(decide(access(), ROOT_A, 'kms:Decrypt', withPolicy(rootAll))).to.equal('allow');
      expect(decide(access({ [ALICE.principalArn]: [ADMIN_POLICY] }), ALICE, 'kms:Decrypt', withPolicy(rootAll))).to.equal('allow');
      // A session has its role's identity policies.
      expect(decide(access({ [`arn:aws:iam::${A}:role/app`]: [ADMIN_POLICY] }), SESSION, 'kms:Decrypt', withPolicy(rootAll))).to.equal('allow');
    });

    it('IAM delegation: a principal with identity policies needs one that allows', function () {
      const a = access({ [ALICE.principalArn]: [{ Statement: [{ Effect: 'Allow', Action: 'kms:DescribeKey', Resource: '*' }] }] });
      expect(decide(a, ALICE, 'kms:DescribeKey', withPolicy(rootAll))).to.equal('allow');
      expect(decide(a, ALICE, 'kms:Decrypt', withPolicy(rootAll))).to.equal(
        `User: ${ALICE.principalArn} is not authorized to perform: kms:Decrypt on resource: ${key.arn} because no identity-based policy allows the kms:Decrypt action`,
      );
    });

    it('a key policy naming the user allows it without identity policies allowing', function () {
      const a = access({ [ALICE.principalArn]: [{ Statement: [{ Effect: 'Allow', Action: 'kms:DescribeKey', Resource: '*' }] }] });
      expect(decide(a, ALICE, 'kms:Decrypt', withPolicy({ Principal: { AWS: ALICE.principalArn }, Action: 'kms:Decrypt' }))).to.equal('allow');
    });

    it('no delegation: without the account root statement identity policies do not help', function () {
      const k = withPolicy({ Principal: { AWS: ROOT_A.principalArn.replace('root', 'user/other') }, Action: 'kms:*' });
      expect(decide(access(), ALICE, 'kms:Encrypt', k)).to.match(/because no resource-based policy allows the kms:Encrypt action$/);
    });

    it('explicit Deny in the key policy wins over Allow', function () {
      const k = withPolicy(rootAll, { Effect: 'Deny', Principal: { AWS: ALICE.principalArn }, Action: 'kms:Decrypt' });
      expect(decide(access(), ALICE, 'kms:Decrypt', k)).to.equal(
        `User: ${ALICE.principalArn} is not authorized to perform: kms:Decrypt on resource: ${key.arn} with an explicit deny in a resource-based policy`,
      );
      expect(decide(access({ [ALICE.principalArn]: [ADMIN_POLICY] }), ALICE, 'kms:Encrypt', k)).to.equal('allow');
    });

    it('explicit Deny in an identity policy wins over the key policy', function () {
      const a = access({ [ALICE.principalArn]: [{ Statement: [{ Effect: 'Allow', Action: 'kms:*', Resource: '*' }, { Effect: 'Deny', Action: 'kms:Decrypt', Resource: '*' }] }] });
      expect(decide(a, ALICE, 'kms:Decrypt', withPolicy({ Principal: { AWS: ALICE.principalArn }, Action: 'kms:*' }))).to.match(/explicit deny in an identity-based policy$/);
    });

    it('explicit Deny wins over a grant', function () {
      const grant = grantFor(BOB.principalArn, ['Decrypt']);
      const k = withPolicy(rootAll, { Effect: 'Deny', Principal: '*', Action: 'kms:Decrypt', Condition: { StringEquals: { 'kms:CallerAccount': B } } });
      expect(decide(access(), BOB, 'kms:Decrypt', k, {}, [grant])).to.match(/explicit deny/);
    });

    it('a Deny naming an account applies to every principal of that account', function () {
      const k = withPolicy(rootAll, { Effect: 'Deny', Principal: { AWS: A }, Action: 'kms:Encrypt' });
      expect(decide(access(), ALICE, 'kms:Encrypt', k)).to.match(/explicit deny/);
    });

    it('cross-account: the key policy must allow the other account and its identity policy must allow', function () {
      const k = withPolicy(rootAll, { Principal: { AWS: `arn:aws:iam::${B}:root` }, Action: ['kms:Encrypt', 'kms:PutKeyPolicy'] });
      const bobAdmin = access({ [BOB.principalArn]: [ADMIN_POLICY] });
      expect(decide(bobAdmin, BOB, 'kms:Encrypt', k)).to.equal('allow');
      expect(decide(access(), BOB, 'kms:Encrypt', k)).to.match(/no identity-based policy allows the kms:Encrypt action$/);
      expect(decide(bobAdmin, BOB, 'kms:Decrypt', k)).to.match(/no resource-based policy allows the kms:Decrypt action$/);
      // PutKeyPolicy is never cross-account.
      expect(decide(bobAdmin, BOB, 'kms:PutKeyPolicy', k)).to.match(/no resource-based policy/);
      const restricted = access({ [BOB.principalArn]: [{ Statement: [{ Effect: 'Allow', Action: 'kms:Decrypt', Resource: '*' }] }] });
      expect(decide(restricted, BOB, 'kms:Encrypt', k)).to.match(/no identity-based policy allows the kms:Encrypt action$/);
    });

    it('conditions over the encryption context, caller account, resource tags and time', function () {
      const k = withPolicy({
        Principal: { AWS: ALICE.principalArn },
        Action: 'kms:Encrypt',
        Condition: {
          StringEquals: { 'kms:EncryptionContext:app': 'billing', 'kms:CallerAccount': A, 'aws:ResourceTag/team': 'billing' },
          'ForAllValues:StringEquals': { 'kms:EncryptionContextKeys': ['app'] },
          DateLessThan: { 'aws:CurrentTime': '2030-01-01T00:00:00Z' },
          IpAddress: { 'aws:SourceIp': '127.0.0.0/8' },
        },
      });
      expect(decide(access(), ALICE, 'kms:Encrypt', k, { encryptionContext: { app: 'billing' } })).to.equal('allow');
      expect(decide(access(), ALICE, 'kms:Encrypt', k, { encryptionContext: { app: 'web' } })).to.match(/no resource-based policy/);
      expect(decide(access(), ALICE, 'kms:Encrypt', k, { encryptionContext: { app: 'billing', x: 'y' } })).to.match(/no resource-based policy/);
      expect(decide(access(), ALICE, 'kms:Encrypt', k)).to.match(/no resource-based policy/);
    });

    it('Resource restricts statements to matching key ARNs', function () {
      const k = withPolicy({ Principal: { AWS: ALICE.principalArn }, Action: 'kms:*', Resource: `arn:aws:kms:*:${A}:key/other` });
      expect(decide(access(), ALICE, 'kms:Encrypt', k)).to.match(/no resource-based policy/);
      const k2 = withPolicy({ Principal: { AWS: ALICE.principalArn }, Action: 'kms:*', Resource: `arn:aws:kms:*:${A}:key/*` });
      expect(decide(access(), ALICE, 'kms:Encrypt', k2)).to.equal('allow');
    });

    it('permissive mode: same account only, policies ignored', function () {
      const permissive: AccessControl = { enforce: false, directory: PrincipalDirectory.empty() };
      const k = withPolicy({ Effect: 'Deny', Principal: '*', Action: 'kms:*' });
      expect(decide(permissive, ALICE, 'kms:Decrypt', k)).to.equal('allow');
      expect(decide(permissive, BOB, 'kms:Decrypt', withPolicy({ Principal: '*', Action: 'kms:*' }))).to.match(/no resource-based policy/);
    });

    it('grants allow their operations to their grantee under their constraints', function () {
      const k = withPolicy(rootAll);
      const plain = grantFor(BOB.principalArn, ['Encrypt', 'Decrypt']);
      expect(decide(access(), BOB, 'kms:Encrypt', k, {}, [plain])).to.equal('allow');
      expect(decide(access(), BOB, 'kms:GenerateDataKey', k, {}, [plain])).to.match(/no resource-based policy/);
      const sessionGrant = grantFor(`arn:aws:iam::${A}:role/app`, ['Decrypt']);
      expect(decide(access(), SESSION, 'kms:Decrypt', withPolicy({ Principal: { AWS: ALICE.principalArn }, Action: 'kms:*' }), {}, [sessionGrant])).to.equal('allow');
      const equals = grantFor(BOB.principalArn, ['Decrypt'], { encryptionContextEquals: { app: 'x' } });
      expect(decide(access(), BOB, 'kms:Decrypt', k, { encryptionContext: { app: 'x' } }, [equals])).to.equal('allow');
      expect(decide(access(), BOB, 'kms:Decrypt', k, { encryptionContext: { app: 'x', b: 'c' } }, [equals])).to.match(/no resource/);
    });

    it('policy variables in Resource and condition values; escapes; unresolvable variables match nothing; not in the 2008 language', function () {
      const ctx = values({ 'aws:username': 'alice', 'aws:PrincipalAccount': A, 'aws:PrincipalTag/team': 'billing', 'kms:EncryptionContext:owner': 'alice' });
      expect(evaluateCondition('StringEquals', 'kms:EncryptionContext:owner', ['${aws:username}'], ctx, true)).to.equal(true);
      expect(evaluateCondition('StringEquals', 'kms:EncryptionContext:owner', ['${aws:username}'], ctx, false)).to.equal(false);
      expect(evaluateCondition('StringEquals', 'aws:PrincipalTag/team', ['${aws:PrincipalTag/team}'], ctx, true)).to.equal(true);
      // ${*} is a literal star, a plain * a wildcard.
      expect(evaluateCondition('StringLike', 'k', ['a${*}'], values({ k: 'abc' }), true)).to.equal(false);
      expect(evaluateCondition('StringLike', 'k', ['a${*}'], values({ k: 'a*' }), true)).to.equal(true);
      expect(evaluateCondition('StringLike', 'k', ['a*'], values({ k: 'abc' }), true)).to.equal(true);
      expect(evaluateCondition('StringEquals', 'k', ['${$}{x}${?}'], values({ k: '${x}?' }), true)).to.equal(true);
      // Absent key: no match, unless a default is given.
      expect(evaluateCondition('StringEquals', 'k', ['${aws:userid}'], values({ k: 'x' }), true)).to.equal(false);
      expect(evaluateCondition('StringEquals', 'k', ["${aws:userid, 'it''s'}"], values({ k: "it's" }), true)).to.equal(true);
      const k = withPolicy({ Principal: { AWS: ALICE.principalArn }, Action: 'kms:*', Resource: 'arn:aws:kms:*:${aws:PrincipalAccount}:key/*' });
      expect(decide(access(), ALICE, 'kms:Encrypt', k)).to.equal('allow');
      const noUser = withPolicy({ Principal: '*', Action: 'kms:*', Resource: 'arn:aws:kms:*:*:key/${aws:username}*' });
      expect(decide(access(), SESSION, 'kms:Encrypt', noUser)).to.match(/no resource-based policy/);
    });

    it('NotPrincipal with Deny spares a caller only when it names every identity of its chain', function () {
      const roleArn = `arn:aws:iam::${A}:role/app`;
      const deny = (...names: string[]) => withPolicy(rootAll, { Effect: 'Deny', NotPrincipal: { AWS: names }, Action: 'kms:Encrypt' });
      const admin = access({ [SESSION.principalArn]: [ADMIN_POLICY], [ALICE.principalArn]: [ADMIN_POLICY] });
      expect(decide(admin, SESSION, 'kms:Encrypt', deny(SESSION.principalArn))).to.match(/explicit deny in a resource-based policy$/);
      expect(decide(admin, SESSION, 'kms:Encrypt', deny(SESSION.principalArn, roleArn))).to.match(/explicit deny/);
      expect(decide(admin, SESSION, 'kms:Encrypt', deny(SESSION.principalArn, roleArn, `arn:aws:iam::${A}:root`))).to.equal('allow');
      expect(decide(admin, ALICE, 'kms:Encrypt', deny(ALICE.principalArn))).to.match(/explicit deny/);
      expect(decide(admin, ALICE, 'kms:Encrypt', deny(ALICE.principalArn, A))).to.equal('allow');
      expect(decide(access(), ROOT_A, 'kms:Encrypt', deny(A))).to.equal('allow');
      // NotPrincipal with Allow: everyone but the named.
      const allow = withPolicy({ NotPrincipal: { AWS: ALICE.principalArn }, Action: 'kms:Encrypt' });
      expect(decide(access(), ALICE, 'kms:Encrypt', allow)).to.match(/no resource-based policy/);
      expect(decide(access(), SESSION, 'kms:Encrypt', allow)).to.equal('allow');
    });

    it('the lockout check refuses a policy that would stop the caller from changing it', function () {
      const doc = parsePolicy(JSON.stringify({ Statement: [{ Effect: 'Allow', Principal: { AWS: BOB.principalArn }, Action: 'kms:*', Resource: '*' }] }), 'key');
      const v = conditionValuesOf({ caller: ALICE, region: 'us-east-1', now: 0, key, request: {} });
      expect(() => checkPolicyLockout(access(), ALICE, doc, key, v)).to.throw('The new key policy will not allow you to update the key policy in the future.');
      const ok = parsePolicy(JSON.stringify({ Statement: [{ Effect: 'Allow', Principal: { AWS: A }, Action: 'kms:*', Resource: '*' }] }), 'key');
      expect(() => checkPolicyLockout(access(), ALICE, ok, key, v)).to.throw('The new key policy will not allow you to update the key policy in the future.');
      expect(() => checkPolicyLockout(access({ [ALICE.principalArn]: [ADMIN_POLICY] }), ALICE, ok, key, v)).not.to.throw();
    });

    it('RetireGrant: retiring principal, grantee with RetireGrant, the issuing account (its users by IAM delegation); an IAM Deny wins', function () {
      const none = new Map<string, string[]>();
      const retire = (a: AccessControl, who: Caller, g: GrantRecord) => () => authorizeRetireGrant(a, who, g, key.arn, none);
      const grant = { ...grantFor(BOB.principalArn, ['Decrypt']), retiringPrincipal: SESSION.principalArn };
      expect(retire(access(), SESSION, grant)).not.to.throw();
      expect(retire(access(), ROOT_A, grant)).not.to.throw();
      expect(retire(access(), BOB, grant)).to.throw(/kms:RetireGrant on resource: .* because no resource-based policy allows/);
      expect(retire(access(), BOB, { ...grant, operations: ['Decrypt', 'RetireGrant'] })).not.to.throw();
      // A user of the issuing account: only when its identity policies delegate kms:RetireGrant.
      expect(retire(access(), ALICE, grant)).to.throw(/because no identity-based policy allows the kms:RetireGrant action/);
      expect(retire(access({ [ALICE.principalArn]: [ADMIN_POLICY] }), ALICE, grant)).not.to.throw();
      // The same for a retiring principal that is an account (root).
      const toAccountB = { ...grant, retiringPrincipal: `arn:aws:iam::${B}:root` };
      expect(retire(access(), BOB, toAccountB)).to.throw(/no identity-based policy/);
      expect(retire(access({ [BOB.principalArn]: [ADMIN_POLICY] }), BOB, toAccountB)).not.to.throw();
      const denyRetire = { Version: '2012-10-17', Statement: [{ Effect: 'Deny', Action: 'kms:RetireGrant', Resource: '*' }] };
      expect(retire(access({ [SESSION.principalArn]: [denyRetire] }), SESSION, grant)).to.throw(/with an explicit deny in an identity-based policy/);
    });
  });

  describe('grant rules', function () {
    const sym = { arn: 'k', keySpec: 'SYMMETRIC_DEFAULT' as const, keyUsage: 'ENCRYPT_DECRYPT' as const };
    const cases: Array<[string, { arn: string; keySpec: never; keyUsage: never }, string[], boolean]> = [
      ['symmetric: GenerateDataKey', sym as never, ['GenerateDataKey', 'Decrypt'], true],
      ['symmetric: Sign', sym as never, ['Sign'], false],
      ['RSA encryption: GenerateDataKey', { arn: 'k', keySpec: 'RSA_2048', keyUsage: 'ENCRYPT_DECRYPT' } as never, ['GenerateDataKey'], false],
      ['RSA encryption: GetPublicKey, Decrypt', { arn: 'k', keySpec: 'RSA_2048', keyUsage: 'ENCRYPT_DECRYPT' } as never, ['GetPublicKey', 'Decrypt'], true],
      ['ECC signing: Sign, Verify', { arn: 'k', keySpec: 'ECC_NIST_P256', keyUsage: 'SIGN_VERIFY' } as never, ['Sign', 'Verify', 'DescribeKey'], true],
      ['ECC signing: Encrypt', { arn: 'k', keySpec: 'ECC_NIST_P256', keyUsage: 'SIGN_VERIFY' } as never, ['Encrypt'], false],
      ['HMAC: GenerateMac', { arn: 'k', keySpec: 'HMAC_256', keyUsage: 'GENERATE_VERIFY_MAC' } as never, ['GenerateMac', 'VerifyMac'], true],
      ['HMAC: Encrypt', { arn: 'k', keySpec: 'HMAC_256', keyUsage: 'GENERATE_VERIFY_MAC' } as never, ['Encrypt'], false],
      ['key agreement: DeriveSharedSecret', { arn: 'k', keySpec: 'ECC_NIST_P256', keyUsage: 'KEY_AGREEMENT' } as never, ['DeriveSharedSecret'], true],
    ];
    for (const [what, key, ops, ok] of cases) {
      it(`${what} is ${ok ? 'accepted' : 'refused'}`, function () {
        const run = () => checkGrantRequest(key, ops as never, undefined);
        if (ok) expect(run).not.to.throw();
        else expect(run).to.throw(/not valid for/);
      });
    }

    it('refuses encryption-context constraints on asymmetric and HMAC keys', function () {
      expect(() => checkGrantRequest({ arn: 'k', keySpec: 'HMAC_256', keyUsage: 'GENERATE_VERIFY_MAC' }, ['GenerateMac'], { encryptionContextSubset: { a: 'b' } })).to.throw(/constraints/);
    });

    it('constraints: keys compare case-insensitively, values exactly (AWS GrantConstraints)', function () {
      expect(constraintsHold({ encryptionContextEquals: { Dept: 'IT' } }, { dept: 'IT' })).to.equal(true);
      expect(constraintsHold({ encryptionContextEquals: { Dept: 'IT' } }, { Dept: 'it' })).to.equal(false);
      expect(constraintsHold({ encryptionContextSubset: { dept: 'IT' } }, { DEPT: 'IT', x: 'y' })).to.equal(true);
      const parent = grantFor(BOB.principalArn, ['CreateGrant', 'Decrypt'], { encryptionContextEquals: { Dept: 'IT' } });
      expect(grantMayDelegate(parent, ['Decrypt'], { encryptionContextEquals: { dept: 'IT' } })).to.equal(true);
    });

    it('grant tokens: a further token for a grant is accepted for it alone; a forged one is not', function () {
      const grant = grantFor(BOB.principalArn, ['Decrypt']);
      const other = grantFor(BOB.principalArn, ['Decrypt']);
      const again = anotherGrantToken(grant);
      expect(again).not.to.equal(grant.grantToken);
      expect(grantIdOfToken(again)).to.equal(grant.grantId);
      expect(tokenNamesGrant(again, grant)).to.equal(true);
      expect(tokenNamesGrant(grant.grantToken, grant)).to.equal(true);
      expect(tokenNamesGrant(anotherGrantToken(other), grant)).to.equal(false);
      const forged = Buffer.from(again, 'base64url');
      forged[63] ^= 1;
      expect(tokenNamesGrant(forged.toString('base64url'), grant)).to.equal(false);
    });

    it('constraints: Equals is exact, Subset requires the pairs', function () {
      expect(constraintsHold({ encryptionContextEquals: { a: '1' } }, { a: '1' })).to.equal(true);
      expect(constraintsHold({ encryptionContextEquals: { a: '1' } }, { a: '1', b: '2' })).to.equal(false);
      expect(constraintsHold({ encryptionContextSubset: { a: '1' } }, { a: '1', b: '2' })).to.equal(true);
      expect(constraintsHold({ encryptionContextSubset: { a: '1' } }, { a: '2' })).to.equal(false);
      expect(constraintsHold({ encryptionContextSubset: { a: '1' } }, {})).to.equal(false);
    });

    it('constraints do not apply to operations without an encryption context', function () {
      const grant = grantFor(BOB.principalArn, ['DescribeKey', 'Decrypt'], { encryptionContextEquals: { a: '1' } });
      expect(grantAllows(grant, BOB, 'kms:DescribeKey', {})).to.equal(true);
      expect(grantAllows(grant, BOB, 'kms:Decrypt', {})).to.equal(false);
    });

    it('delegation through a grant passes on no more than it holds', function () {
      const parent = grantFor(BOB.principalArn, ['CreateGrant', 'Decrypt'], { encryptionContextSubset: { a: '1' } });
      expect(grantMayDelegate(parent, ['Decrypt'], { encryptionContextSubset: { a: '1', b: '2' } })).to.equal(true);
      expect(grantMayDelegate(parent, ['Decrypt'], undefined)).to.equal(false);
      expect(grantMayDelegate(parent, ['Encrypt'], { encryptionContextSubset: { a: '1' } })).to.equal(false);
    });

    it('grant tokens name their grant; others are InvalidGrantTokenException', function () {
      const id = newGrantId();
      expect(grantIdOfToken(newGrantToken(id))).to.equal(id);
      expect(() => grantIdOfToken('bogus')).to.throw('The grant token is not valid.');
    });
  });
});

function grantFor(grantee: string, operations: string[], constraints?: GrantRecord['constraints']): GrantRecord {
  const grantId = newGrantId();
  return {
    grantId,
    keyId: '1234abcd-12ab-34cd-56ef-1234567890ab',
    accountId: A,
    region: 'us-east-1',
    createdAt: 0,
    granteePrincipal: grantee,
    issuingAccount: `arn:aws:iam::${A}:root`,
    operations: operations as GrantRecord['operations'],
    ...(constraints ? { constraints } : {}),
    grantToken: newGrantToken(grantId),
  };
}
