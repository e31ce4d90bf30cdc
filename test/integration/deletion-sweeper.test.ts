import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import pino from 'pino';
import type { Clock } from '../../src/clock';
import { loadConfig, loadHsmProfile } from '../../src/config/config';
import { KeyCustody } from '../../src/custody/key-custody';
import { Token } from '../../src/custody/token';
import { DeletionSweeper } from '../../src/lifecycle/deletion-sweeper';
import type { RequestContext, Services } from '../../src/operations';
import { cancelKeyDeletion } from '../../src/operations/cancel-key-deletion';
import { createAlias } from '../../src/operations/create-alias';
import { createKey } from '../../src/operations/create-key';
import { scheduleKeyDeletion } from '../../src/operations/schedule-key-deletion';
import { JsonFileStore } from '../../src/store/json-file-store';

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * The periodic sweeper with real parts (SoftHSM2 token, JSON store, the operations
 * themselves) and the one injected part the design provides for this: a clock the test
 * moves forward while the sweeper runs.
 */
describe('deletion sweeper (running service, moving clock)', function () {
  let token: Token;
  let store: JsonFileStore;
  let services: Services;
  let sweeper: DeletionSweeper;
  let now = Date.UTC(2030, 0, 1);
  const clock: Clock = { now: () => now };
  const ctx: RequestContext = {
    scope: { region: 'us-east-1', accountId: '111122223333' },
    caller: { accountId: '111122223333', principalArn: 'arn:aws:iam::111122223333:root', accessKeyId: 'TEST' },
    requestId: 'test',
  };

  before(async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'p11kms-sweeper-'));
    const config = loadConfig({ env: { P11KMS_DATA_DIR: dataDir } });
    const log = pino({ level: 'silent' });
    store = await JsonFileStore.open(dataDir);
    token = Token.open(loadHsmProfile(config), dataDir, log);
    services = { store, custody: new KeyCustody(token), clock, log };
    sweeper = new DeletionSweeper(services, 25);
    sweeper.start();
  });

  after(async () => {
    await sweeper?.stop();
    await store?.close();
    token?.close();
  });

  async function until(check: () => Promise<boolean>): Promise<boolean> {
    for (let i = 0; i < 40; i++) {
      if (await check()) return true;
      await new Promise((r) => setTimeout(r, 25));
    }
    return false;
  }

  it('deletes the key, its aliases and its token material once the waiting period has passed, not before', async () => {
    const { KeyMetadata } = await createKey({}, ctx, services);
    const keyId = KeyMetadata!.KeyId;
    await createAlias({ AliasName: 'alias/sweep-me', TargetKeyId: keyId }, ctx, services);
    await scheduleKeyDeletion({ KeyId: keyId, PendingWindowInDays: 7 }, ctx, services);

    now += 7 * DAY_MS - 1000;
    await new Promise((r) => setTimeout(r, 150));
    expect((await store.getKey(keyId))?.keyState, 'one second before the end').to.equal('PendingDeletion');
    expect(await services.custody.exists({ keyId, version: 1 })).to.equal(true);

    now += 2000;
    expect(await until(async () => (await store.getKey(keyId)) === undefined), 'metadata removed').to.equal(true);
    expect(await until(async () => !(await services.custody.exists({ keyId, version: 1 }))), 'token material destroyed').to.equal(true);
    expect(await store.getAlias(ctx.scope, 'alias/sweep-me')).to.equal(undefined);
  });

  it('keeps a key whose deletion was cancelled, even after the original date', async () => {
    const { KeyMetadata } = await createKey({}, ctx, services);
    const keyId = KeyMetadata!.KeyId;
    await scheduleKeyDeletion({ KeyId: keyId, PendingWindowInDays: 7 }, ctx, services);
    now += 3 * DAY_MS;
    await cancelKeyDeletion({ KeyId: keyId }, ctx, services);
    now += 10 * DAY_MS;
    await sweeper.sweep();
    expect((await store.getKey(keyId))?.keyState).to.equal('Disabled');
    expect(await services.custody.exists({ keyId, version: 1 })).to.equal(true);
  });
});
