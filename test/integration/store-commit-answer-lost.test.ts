import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { CreateAliasCommand, CreateGrantCommand, CreateKeyCommand, EncryptCommand, ListAliasesCommand, ListGrantsCommand } from '@aws-sdk/client-kms';
import { expect } from 'chai';
import { Client } from 'pg';
import { findChains } from '../../src/audit/chains';
import { readTrail } from '../support/audit-trail';
import { custodyFindings } from '../support/custody-invariants';
import { until } from '../support/in-process';
import type { PostgresRelay } from '../support/postgres-relay';
import { serverOnFreshDatabase } from '../support/postgres-suite';
import { expectError, post, type RawResponse } from '../support/raw-aws-json';
import type { TestServer } from '../support/server';
import { listTokenObjects } from '../support/token-tool';

/**
 * The connection is cut after p11kms sent a transaction's COMMIT, before PostgreSQL's answer
 * reached it: the one moment where p11kms cannot know from the connection whether its change
 * took effect. Running the transaction again could make it twice, or answer a request that
 * succeeded with a refusal of its own first run (CreateAlias: AlreadyExistsException). So it
 * is not run again: p11kms asks PostgreSQL on another connection (pg_xact_status of the id
 * the transaction learnt before its COMMIT). Committed (the relay swallowed the server's
 * answer), the call succeeds exactly as if the answer had arrived: 200, the change once, one
 * success record in the trail. Aborted (the relay swallowed the COMMIT itself), the client
 * gets KMSInternalException (HTTP 500, AWS's answer for an internal failure, no stack),
 * nothing is stored, and a key's token object is undone as for any failed creation.
 */
describe('PostgreSQL store: a COMMIT whose answer was lost', function () {
  this.timeout(120_000);
  let relay: PostgresRelay;
  let server: TestServer;
  let db: Client;

  // Sweeps every second: the audit outbox's delivery runs with them.
  serverOnFreshDatabase({ relayed: true, server: { sweepIntervalSeconds: 1 } }, (suite) => ({ server, relay, db } = suite));

  /** Runs `call` while the answer to the COMMIT of the transaction mentioning `marker` is cut; checks PostgreSQL did commit. */
  async function answerCut<T>(marker: string, call: () => Promise<T>): Promise<T> {
    let committed: string | undefined;
    const cut = relay.cutAfterCommit(marker).then(({ answer }) => (committed = answer.toString('latin1')));
    const result = await call();
    await cut;
    // The server's answer the relay swallowed: CommandComplete "COMMIT", so the change took effect.
    expect(committed, 'the COMMIT was cut after the server answered it').to.include('C\0\0\0\x0bCOMMIT\0');
    return result;
  }

  /**
   * Sends `target` with `body` while the COMMIT of the transaction mentioning `marker` is
   * swallowed `times` times (each run of it again meets the next cut); the answer.
   */
  async function commitCut(target: string, body: object, marker: string, times = 1): Promise<RawResponse> {
    let swallowed = 0;
    const arm = (): void => void relay.cutBeforeCommit(marker).then(() => (++swallowed < times ? arm() : undefined));
    arm();
    const res = await post(server.endpoint, { target: `TrentService.${target}`, body: JSON.stringify(body) });
    expect(swallowed, 'COMMITs cut before the server received them').to.equal(times);
    return res;
  }

  const count = async (sql: string, value: string) => Number((await db.query<{ n: string }>(sql, [value])).rows[0].n);

  /**
   * The trail's records of `eventName` calls `matching`, each as its error code ('none':
   * success), once the audit outbox is empty. A change's outbox entry is committed with it and,
   * once the request's own record is in the trail, removed by the process's next transaction:
   * an Encrypt under `keyId` makes one (its last-usage flush).
   */
  async function recorded(eventName: string, matching: (params: Record<string, unknown>) => boolean, keyId?: string): Promise<string[]> {
    if (keyId !== undefined) await server.client().send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('a later transaction') }));
    expect(await until(async () => (await db.query('SELECT id FROM p11kms_audit_outbox')).rows.length === 0), 'outbox emptied').to.equal(true);
    return findChains([path.join(server.dataDir, 'audit')], { required: false })
      .flatMap((chain) => readTrail(chain))
      .filter((r) => r.eventName === eventName && matching((r.requestParameters ?? {}) as Record<string, unknown>))
      .map((r) => r.errorCode ?? 'none');
  }

  /** Where the store (as PostgreSQL holds it) and the token disagree: nothing once every creation is resolved. */
  async function custody(): Promise<string[]> {
    const keys = (await db.query<{ doc: never }>('SELECT doc FROM p11kms_keys')).rows.map((r) => r.doc);
    const intents = (await db.query<{ doc: never }>('SELECT doc FROM p11kms_intents')).rows.map((r) => r.doc);
    return custodyFindings({ keys, intents }, listTokenObjects(server.dataDir));
  }

  it('CreateAlias answered committed: the call succeeds, the alias recorded once, one success in the trail', async () => {
    const kms = server.client();
    const keyId = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    const aliasName = `alias/commit-cut-${randomBytes(4).toString('hex')}`;
    await answerCut(aliasName, () => kms.send(new CreateAliasCommand({ AliasName: aliasName, TargetKeyId: keyId })));

    expect(await count('SELECT count(*) AS n FROM p11kms_aliases WHERE alias_name = $1', aliasName)).to.equal(1);
    const listed = ((await kms.send(new ListAliasesCommand({}))).Aliases ?? []).filter((a) => a.AliasName === aliasName);
    expect(listed.map((a) => a.TargetKeyId)).to.deep.equal([keyId]);
    expect(await recorded('CreateAlias', (p) => p.aliasName === aliasName, keyId)).to.deep.equal(['none']);
  });

  it('CreateGrant answered committed: the call succeeds with the one grant recorded, one success in the trail', async () => {
    const kms = server.client();
    const keyId = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    const grantee = `arn:aws:iam::111122223333:role/commit-cut-${randomBytes(4).toString('hex')}`;
    const made = await answerCut(grantee, () => kms.send(new CreateGrantCommand({ KeyId: keyId, GranteePrincipal: grantee, Operations: ['Encrypt'] })));

    expect(await count("SELECT count(*) AS n FROM p11kms_grants WHERE doc->>'granteePrincipal' = $1", grantee)).to.equal(1);
    const grants = ((await kms.send(new ListGrantsCommand({ KeyId: keyId }))).Grants ?? []).filter((g) => g.GranteePrincipal === grantee);
    expect(grants.map((g) => g.GrantId)).to.deep.equal([made.GrantId]);
    expect(await recorded('CreateGrant', (p) => p.granteePrincipal === grantee, keyId)).to.deep.equal(['none']);
  });

  it('CreateKey answered committed: the call succeeds with the one key recorded, its material kept, no intent left', async () => {
    const kms = server.client();
    const description = `commit-cut-${randomBytes(4).toString('hex')}`;
    // The creation's last transaction writes the key record (its first only the intent).
    const made = await answerCut('INSERT INTO p11kms_keys', () => kms.send(new CreateKeyCommand({ Description: description })));

    const { rows } = await db.query<{ key_id: string }>("SELECT key_id FROM p11kms_keys WHERE doc->>'description' = $1", [description]);
    expect(rows.map((r) => r.key_id)).to.deep.equal([made.KeyMetadata!.KeyId]);
    // Its token object was kept: the key works.
    expect(await recorded('CreateKey', (p) => p.description === description, made.KeyMetadata!.KeyId)).to.deep.equal(['none']);
    // The intent went in the same commit as the record, and the token holds what the store names.
    expect(await custody()).to.deep.equal([]);
  });

  it('CreateAlias whose COMMIT never arrived: run again on another connection, the alias stored once, one success in the trail', async () => {
    // Pre: PostgreSQL said the transaction aborted, nothing was written, and the call still
    // failed (KMSInternalException), where a connection lost before its COMMIT was sent runs again.
    const kms = server.client();
    const keyId = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    const aliasName = `alias/commit-lost-${randomBytes(4).toString('hex')}`;
    const res = await commitCut('CreateAlias', { AliasName: aliasName, TargetKeyId: keyId }, aliasName);

    expect(res.status, res.text).to.equal(200);
    expect(await count('SELECT count(*) AS n FROM p11kms_aliases WHERE alias_name = $1', aliasName)).to.equal(1);
    expect(await recorded('CreateAlias', (p) => p.aliasName === aliasName, keyId)).to.deep.equal(['none']);
  });

  it('CreateKey whose COMMIT never arrived: run again, the one key recorded with its material, no intent left', async () => {
    const description = `commit-lost-${randomBytes(4).toString('hex')}`;
    const res = await commitCut('CreateKey', { Description: description }, 'INSERT INTO p11kms_keys');

    expect(res.status, res.text).to.equal(200);
    const keyId = (JSON.parse(res.text) as { KeyMetadata: { KeyId: string } }).KeyMetadata.KeyId;
    const { rows } = await db.query<{ key_id: string }>("SELECT key_id FROM p11kms_keys WHERE doc->>'description' = $1", [description]);
    expect(rows.map((r) => r.key_id)).to.deep.equal([keyId]);
    // Its token object was kept (the key works: the Encrypt in `recorded`), and nothing is left over.
    expect(await recorded('CreateKey', (p) => p.description === description, keyId)).to.deep.equal(['none']);
    expect(await custody()).to.deep.equal([]);
  });

  it('CreateKey whose COMMIT never arrives however often it runs: KMSInternalException, no key, no intent, its token object destroyed', async () => {
    const description = `commit-lost-always-${randomBytes(4).toString('hex')}`;
    // The first run and one more per pooled connection (the store's reconnect bound, pool size 10).
    const res = await commitCut('CreateKey', { Description: description }, 'INSERT INTO p11kms_keys', 11);

    expect(expectError(res, 'KMSInternalException', 500)).to.equal('An internal error occurred.');
    expect(await count("SELECT count(*) AS n FROM p11kms_keys WHERE doc->>'description' = $1", description)).to.equal(0);
    expect(await recorded('CreateKey', (p) => p.description === description)).to.deep.equal(['KMSInternalException']);
    // Undone at once, as any failed creation: no intent waits for reconciliation, no orphan object.
    expect(await custody()).to.deep.equal([]);
  });

  it('a COMMIT whose answer was lost and whose outcome cannot be asked: KMSInternalException, logged once with the reason, the change recorded once', async () => {
    const kms = server.client();
    const keyId = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    const aliasName = `alias/commit-unknown-${randomBytes(4).toString('hex')}`;
    const logBefore = server.stderr().length;
    // As the answer is swallowed, the database goes out of reach: every open connection is
    // cut and new ones are refused, so asking whether the COMMIT took effect fails.
    const cut = relay.cutAfterCommit(aliasName).then(() => {
      relay.refuse(true);
      relay.cut();
    });
    let res: RawResponse;
    try {
      res = await post(server.endpoint, { target: 'TrentService.CreateAlias', body: JSON.stringify({ AliasName: aliasName, TargetKeyId: keyId }) });
      await cut;
    } finally {
      relay.refuse(false);
    }
    expect(expectError(res, 'KMSInternalException', 500)).to.equal('An internal error occurred.');
    const unknown = server
      .stderr()
      .slice(logBefore)
      .split('\n')
      .filter((l) => l.includes('whether it committed is unknown'));
    expect(unknown, 'log lines saying the outcome is unknown').to.have.length(1);
    expect(unknown[0]).to.include('asking PostgreSQL for its status failed');
    // PostgreSQL did commit it: the change stands, once.
    expect(await count('SELECT count(*) AS n FROM p11kms_aliases WHERE alias_name = $1', aliasName)).to.equal(1);
  });
});
