/**
 * boto3 (Python), unmodified, against a real p11kms process: its paginators follow our
 * NextMarker, its modelled exception classes catch our errors, and botocore's standard retry
 * mode recognises our ThrottlingException and gets through a burst past the request quota.
 */
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { expect } from 'chai';
import { pythonWithBoto3 } from '../support/python';
import { serverPerSuite, type TestServer } from '../support/server';

const SCRIPT = path.resolve(__dirname, '..', '..', '..', 'test', 'fixtures', 'boto3-session.py');

interface Paged<T> {
  pages: number;
  items: T[];
}

interface Boto3Session {
  created: string[];
  list_keys: Paged<{ KeyId: string }>;
  list_aliases: Paged<{ AliasName: string; TargetKeyId?: string }>;
  list_grants: Paged<{ GrantId: string }>;
  list_retirable_grants: Paged<{ GrantId: string }>;
  list_resource_tags: Paged<{ TagKey: string; TagValue: string }>;
  errors: Record<string, [string, string, number] | 'no error'>;
  decrypted: string;
  burst: { answered: number; retries: number };
}

describe('boto3', function () {
  this.timeout(180_000);
  let server: TestServer;
  let python: string | undefined;
  let seen: Boto3Session;

  before(function () {
    python = pythonWithBoto3();
    if (!python) {
      console.log('      skipping: no python3 with boto3 (scripts/run.sh installs python3-boto3)');
      this.skip();
    }
  });
  // Two symmetric calls a second per account and region, so a burst of sixteen is throttled.
  serverPerSuite({ env: { P11KMS_REQUEST_QUOTAS: 'symmetric=2' } }, (started) => (server = started));
  before(async function () {
    const out = await new Promise<string>((resolve, reject) =>
      execFile(python!, [SCRIPT, server.endpoint, 'AKIDBOTO3', 'boto3-secret'], { env: { PATH: process.env.PATH, HOME: server.dataDir } }, (err, stdout, stderr) =>
        err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout),
      ),
    );
    seen = JSON.parse(out) as Boto3Session;
  });

  it('paginators walk ListKeys, ListAliases, ListGrants, ListRetirableGrants and ListResourceTags two at a time', function () {
    expect(seen.list_keys.items.map((k) => k.KeyId)).to.include.members(seen.created);
    expect(seen.list_keys.pages).to.be.at.least(3);
    const aliases = seen.list_aliases.items.filter((a) => a.AliasName.startsWith('alias/boto3-'));
    expect(aliases.map((a) => [a.AliasName, a.TargetKeyId])).to.have.deep.members(seen.created.map((k, i) => [`alias/boto3-${i}`, k]));
    expect(seen.list_aliases.pages).to.be.at.least(3);
    for (const listing of [seen.list_grants, seen.list_retirable_grants]) {
      expect(new Set(listing.items.map((g) => g.GrantId)).size).to.equal(3);
      expect(listing.pages).to.equal(2);
    }
    expect(seen.list_resource_tags.items).to.deep.equal([0, 1, 2].map((i) => ({ TagKey: `t${i}`, TagValue: `v${i}` })));
    expect(seen.list_resource_tags.pages).to.equal(2);
  });

  it("raises boto3's modelled exception classes with AWS's codes, messages and statuses", function () {
    const disabledKey = seen.created[2];
    expect(seen.errors).to.deep.equal({
      NotFoundException: ['NotFoundException', 'Alias arn:aws:kms:us-east-1:111122223333:alias/boto3-none is not found.', 400],
      InvalidCiphertextException: ['InvalidCiphertextException', '', 400],
      DisabledException: ['DisabledException', `arn:aws:kms:us-east-1:111122223333:key/${disabledKey} is disabled.`, 400],
      AlreadyExistsException: ['AlreadyExistsException', "An alias with the name arn:aws:kms:us-east-1:111122223333:alias/boto3-0 already exists", 400],
    });
    expect(seen.decrypted).to.equal('boto3');
  });

  it("botocore's standard retry mode takes ThrottlingException as throttling: a burst past the quota is answered in full", function () {
    expect(seen.burst.answered).to.equal(16);
    expect(seen.burst.retries, 'retries botocore made after ThrottlingException').to.be.greaterThan(0);
  });
});
