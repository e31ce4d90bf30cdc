import { expect } from 'chai';
import { aWholeSweepFromNow, type InProcessService, type ManualClock, openInProcessService, until } from '../support/in-process';
import { DeletionSweeper } from '../../src/lifecycle/deletion-sweeper';
import type { RequestContext, Services } from '../../src/operations';
import { cancelKeyDeletion } from '../../src/operations/cancel-key-deletion';
import { createAlias } from '../../src/operations/create-alias';
import { createKey } from '../../src/operations/create-key';
import { scheduleKeyDeletion } from '../../src/operations/schedule-key-deletion';
import { JsonFileStore } from '../../src/store/json/json-file-store';

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * The periodic sweeper with real parts (SoftHSM2 token, JSON store, the operations
 * themselves) and the one injected part the design provides for this: a clock the test
 * moves forward while the sweeper runs.
 */
describe('deletion sweeper (running service, moving clock)', function () {
  let harness: InProcessService;
  let services: Services;
  let store: JsonFileStore;
  let ctx: RequestContext;
  let clock: ManualClock;
  let sweeper: DeletionSweeper;

  before(async () => {
    harness = await openInProcessService('sweeper', Date.UTC(2030, 0, 1));
    ({ services, store, ctx, clock } = harness);
    sweeper = new DeletionSweeper(services, 25);
    sweeper.start();
  });

  after(async () => {
    await sweeper?.stop();
    await harness?.close();
  });

  it('deletes the key, its aliases and its token material once the waiting period has passed, not before', async () => {
    const { KeyMetadata } = await createKey({}, ctx, services);
    const keyId = KeyMetadata!.KeyId;
    await createAlias({ AliasName: 'alias/sweep-me', TargetKeyId: keyId }, ctx, services);
    await scheduleKeyDeletion({ KeyId: keyId, PendingWindowInDays: 7 }, ctx, services);

    clock.advance(7 * DAY_MS - 1000);
    await aWholeSweepFromNow(sweeper);
    expect((await store.getKey({ keyId, region: ctx.scope.region }))?.keyState, 'one second before the end').to.equal('PendingDeletion');
    expect(await services.custody.objects.exists({ keyId, version: 1 })).to.equal(true);

    clock.advance(2000);
    expect(await until(async () => (await store.getKey({ keyId, region: ctx.scope.region })) === undefined), 'metadata removed').to.equal(true);
    expect(await until(async () => !(await services.custody.objects.exists({ keyId, version: 1 }))), 'token material destroyed').to.equal(true);
    expect(await store.getAlias(ctx.scope, 'alias/sweep-me')).to.equal(undefined);
  });

  it('keeps a key whose deletion was cancelled, even after the original date', async () => {
    const { KeyMetadata } = await createKey({}, ctx, services);
    const keyId = KeyMetadata!.KeyId;
    await scheduleKeyDeletion({ KeyId: keyId, PendingWindowInDays: 7 }, ctx, services);
    clock.advance(3 * DAY_MS);
    await cancelKeyDeletion({ KeyId: keyId }, ctx, services);
    clock.advance(10 * DAY_MS);
    await sweeper.sweep();
    expect((await store.getKey({ keyId, region: ctx.scope.region }))?.keyState).to.equal('Disabled');
    expect(await services.custody.objects.exists({ keyId, version: 1 })).to.equal(true);
  });
});
