import { hostname } from 'node:os';
import { type KeyCustody, type MaterialRef, materialLabel } from '../../custody/key-custody';
import type { WrappingRef } from '../../custody/key-import';
import { newCreationId } from '../../custody/token-objects';
import { BackgroundLockLostError, KmsError, StoreNotCommittedError } from '../../errors';
import type { StoreTransaction } from '../../store/metadata-store';
import type { CreationIntent } from '../../store/records';
import type { Services } from '../context';

/**
 * The one place per-key mutations that touch the token go through (docs/key-custody.md,
 * "Custody protocol"). Two rules make every interleaving and every crash point safe:
 *
 * - create: an intent naming a fresh creation id is committed, the token object is made with
 *   that id in its CKA_ID, then ONE transaction records the material and drops the intent.
 *   A request that loses (the transaction body refuses) destroys exactly its own creation.
 * - remove: ONE transaction forgets the material and commits a removal intent naming its
 *   creation; the objects are destroyed, then the removal intent is dropped.
 *
 * Reconciliation destroys only objects a removal intent or a dead creation intent names; an
 * object nothing names is kept and reported (a store older than the token must not cost the
 * keys made after it). The optimistic checks live in the transaction bodies, so they hold across processes
 * sharing a store; the in-process queue below and the store's per-key lock (a store shared by
 * several processes) keep mutations of one key from meeting at commit, where a loser could
 * lose every retry (26 rotations through three processes: ConflictException instead of 25 OK).
 */

/** Who owns an intent, for operators reading a stuck one. */
const INTENT_OWNER = `${hostname()}:${process.pid}`;

/** How often a mutation that lost a race to another one is retried before ConflictException. */
const CONFLICT_ATTEMPTS = 4;

/**
 * Runs `fn` after every earlier mutation of the same key in this process has settled.
 * Keys are independent; the queue of a key disappears when it drains.
 */
export class KeyQueue {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(keyId: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(keyId) ?? Promise.resolve();
    const result = previous.then(fn, fn);
    const tail = result.catch(() => undefined);
    this.tails.set(keyId, tail);
    void tail.then(() => {
      if (this.tails.get(keyId) === tail) this.tails.delete(keyId);
    });
    return result;
  }
}

/**
 * A mutation of one key: queued behind this process's other mutations of the key, and run
 * again (from its first read) when a concurrent mutation elsewhere made it conflict.
 */
export async function mutateKey<T>(services: Services, keyId: string, attempt: () => Promise<T>): Promise<T> {
  const run = async () => {
    for (let i = 1; ; i++) {
      try {
        return await attempt();
      } catch (err) {
        if (!(err instanceof KmsError && err.name === 'ConflictException') || i >= CONFLICT_ATTEMPTS) throw err;
        services.log.debug({ keyId, attempt: i }, 'key changed under a mutation; retrying');
      }
    }
  };
  // The store's key lock spans processes; the queue spares this process's waiters a session each.
  const serialised = services.store.serialiseKey ? () => services.store.serialiseKey!(keyId, run) : run;
  return services.keyQueue ? services.keyQueue.run(keyId, serialised) : serialised();
}

export interface Creation<Made, T> {
  keyId: string;
  purpose: 'material' | 'wrapping';
  /** The token the objects are made in (a custom key store's backend); the main token otherwise. */
  custody?: KeyCustody;
  /** The AWS_CLOUDHSM custom key store whose backend token `custody` is. */
  customKeyStoreId?: string;
  /** A creation id chosen by the caller (an import wrapping id); a fresh one otherwise. */
  creationId?: string;
  /** The token work: makes objects carrying `creationId` in CKA_ID. */
  make(creationId: string): Promise<Made>;
  /**
   * Pure transaction body: re-reads the key, checks that what was made still fits (throws a
   * KmsError otherwise: the objects are destroyed) and records it. `keep: false` records
   * nothing of the objects (e.g. the same material was stored by a concurrent request).
   */
  commit(tx: StoreTransaction, made: Made, creationId: string): Promise<{ value: T; keep: boolean }>;
}

/** Intent, token, then one transaction; see the module comment. */
export async function createInToken<Made, T>(services: Services, creation: Creation<Made, T>): Promise<T> {
  const creationId = creation.creationId ?? newCreationId();
  const custody = creation.custody ?? services.custody;
  // A custom key store's token stays open until the creation is recorded or undone (a
  // Disconnect meanwhile waits); one already closed means the Disconnect came first.
  const backend = custody !== services.custody;
  const release = backend ? custody.hold() : undefined;
  if (backend && !release) {
    throw new KmsError('CustomKeyStoreInvalidStateException', 'The custom key store was disconnected; connect it before creating keys in it.');
  }
  try {
    return await createHeld(services, creation, creationId, custody);
  } finally {
    release?.();
  }
}

async function createHeld<Made, T>(services: Services, creation: Creation<Made, T>, creationId: string, custody: KeyCustody): Promise<T> {
  const { keyId } = creation;
  const backend = await services.store.transact(async (tx) => {
    const where = await backendOf(tx, creation.customKeyStoreId);
    tx.putIntent({ creationId, keyId, purpose: creation.purpose, createdAt: services.clock.now(), owner: INTENT_OWNER, ...where });
    return where;
  });
  let made: Made;
  try {
    made = await creation.make(creationId);
  } catch (err) {
    // A failed creation may still have left an object (a torn write): look for it by id.
    const undo = () => destroyRemoved(services, keyId, [doomedCreation(custody, creationId)]);
    if (err instanceof KmsError && err.stillRunning) undoOnceAnswered(services, custody, err.stillRunning, undo);
    else await undo();
    throw err;
  }
  let outcome: { value: T; keep: boolean };
  try {
    outcome = await services.store.transact(async (tx) => {
      // Reconciliation may have declared the intent dead (a token call slower than the lease)
      // and turned it into a removal: then nothing may be recorded.
      if ((await tx.getIntent(creationId))?.purpose !== creation.purpose) {
        throw new KmsError('DependencyTimeoutException', 'The key store did not complete the request in time. Try again.', {
          internalDetail: `creation ${creationId} outlived its intent`,
        });
      }
      const result = await creation.commit(tx, made, creationId);
      if (result.keep) tx.deleteIntent(creationId);
      else tx.putIntent(removalIntent(services, keyId, creationId, backend));
      return result;
    });
  } catch (err) {
    // A refusal from the body, or a store failure known to have committed nothing (its
    // connection lost before COMMIT, PostgreSQL saying the COMMIT aborted, or a background
    // task's transaction refused for want of its lock): undone now. Any other store failure
    // leaves the outcome open: the intent stays and reconciliation decides.
    if (err instanceof KmsError || err instanceof StoreNotCommittedError || err instanceof BackgroundLockLostError) await destroyRemoved(services, keyId, [doomedCreation(custody, creationId)]);
    else services.log.error({ keyId, creationId, err: (err as Error).message }, 'the store failed while recording the creation (a COMMIT whose outcome is unknown may have taken effect); if it did not, reconciliation resolves its intent');
    throw err;
  }
  if (!outcome.keep) await destroyRemoved(services, keyId, [doomedCreation(custody, creationId)]);
  return outcome.value;
}

/**
 * A token call past its deadline may still make the object after the request has answered
 * (a generation the device finishes late, an import's copy into the token after a slow
 * unwrap): looking for it now could find nothing and drop the intent, leaving an object
 * nothing names. So the intent keeps naming the creation until the call has answered, and
 * only then are its objects destroyed (a crash meanwhile leaves the intent to reconciliation).
 * A custom key store's token is held open until then; one already disconnected leaves it to
 * the reconciliation at its next connection.
 */
function undoOnceAnswered(services: Services, custody: KeyCustody, answered: Promise<void>, undo: () => Promise<void>): void {
  const release = custody === services.custody ? () => undefined : custody.hold();
  if (!release) return;
  void answered.then(undo).finally(release);
}

/** Where an intent's objects are: an AWS_CLOUDHSM store's backend token; nothing for the main token. */
type BackendFields = Pick<CreationIntent, 'customKeyStoreId' | 'cloudHsmClusterId'>;

/**
 * The store and its cluster, read in the intent's transaction: the cluster still tells which
 * token holds the objects once the store itself is deleted (its keys deleted while it was
 * disconnected), so that a store created later on that token finishes the removal.
 */
async function backendOf(tx: StoreTransaction, customKeyStoreId: string | undefined): Promise<BackendFields> {
  if (customKeyStoreId === undefined) return {};
  const cluster = (await tx.getCustomKeyStore(customKeyStoreId))?.cloudHsmClusterId;
  return { customKeyStoreId, ...(cluster !== undefined ? { cloudHsmClusterId: cluster } : {}) };
}

/** Names objects to destroy: a creation id, or the label of material made before creation ids. */
function removalIntent(services: Services, keyId: string, name: string, backend: BackendFields, legacyLabel?: string): CreationIntent {
  return { creationId: name, keyId, purpose: 'removal', createdAt: services.clock.now(), owner: INTENT_OWNER, ...backend, ...(legacyLabel ? { legacyLabel } : {}) };
}

export interface Removal<T> {
  value: T;
  /** Material the transaction stopped referring to. */
  materials?: readonly MaterialRef[];
  /** The AWS_CLOUDHSM custom key store whose backend token holds `materials`; the main token otherwise. */
  customKeyStoreId?: string;
  wrappingKeys?: readonly WrappingRef[];
}

/**
 * Store first, then token: `body` (a pure transaction body) stops referring to objects and
 * names them; the same transaction commits a removal intent for each material, and they are
 * destroyed once that is durable. A failure to destroy (or a backend token that is not open)
 * leaves the removal intent to reconciliation, because the request itself has succeeded.
 */
export async function removeFromToken<T>(services: Services, keyId: string, body: (tx: StoreTransaction) => Promise<Removal<T>>): Promise<T> {
  const removal = await services.store.transact(async (tx) => {
    const result = await body(tx);
    const backend = result.materials?.length ? await backendOf(tx, result.customKeyStoreId) : {};
    for (const ref of result.materials ?? []) {
      const legacyLabel = ref.creationId ? undefined : materialLabel(ref);
      tx.putIntent(removalIntent(services, keyId, ref.creationId ?? legacyLabel!, backend, legacyLabel));
    }
    return result;
  });
  const materials = removal.materials ?? [];
  if (materials.length > 0) {
    const custody = removal.customKeyStoreId === undefined ? services.custody : services.keyStores?.custodyOf(removal.customKeyStoreId);
    const release = custody === services.custody ? () => undefined : custody?.hold();
    if (custody && release) {
      try {
        await destroyRemoved(services, keyId, materials.map((ref) => doomedMaterial(custody, ref)));
      } finally {
        release();
      }
    } else {
      services.log.warn({ keyId, customKeyStoreId: removal.customKeyStoreId, labels: materials.map((m) => materialLabel(m)) }, 'its custom key store is disconnected: the material stays in the backend token until the store connects again');
    }
  }
  for (const ref of removal.wrappingKeys ?? []) await destroyLogged(services, keyId, () => services.custody.importer.destroyWrappingKey(ref));
  return removal.value;
}

/** One removal: the intent naming it and the token call that destroys its objects. */
interface Doomed {
  intent: string;
  destroy(): Promise<unknown>;
}

/** A creation that will not be recorded (failed, refused, or kept nothing): its intent, creation or removal, goes with it. */
function doomedCreation(custody: KeyCustody, creationId: string): Doomed {
  return { intent: creationId, destroy: () => custody.objects.destroyCreation(creationId) };
}

function doomedMaterial(custody: KeyCustody, ref: MaterialRef): Doomed {
  return { intent: ref.creationId ?? materialLabel(ref), destroy: () => custody.objects.destroy(ref) };
}

/** Destroys the objects intents name, then drops those intents; what fails is left to reconciliation. */
async function destroyRemoved(services: Services, keyId: string, doomed: readonly Doomed[]): Promise<void> {
  const done: string[] = [];
  for (const d of doomed) if (await destroyLogged(services, keyId, d.destroy, d.intent)) done.push(d.intent);
  if (done.length === 0) return;
  await services.store.transact((tx) => done.forEach((name) => tx.deleteIntent(name))).catch((err: unknown) => {
    // A background task that lost its lock (the step-down said so) leaves them as a crash would.
    if (err instanceof BackgroundLockLostError) return;
    services.log.error({ keyId, intents: done, err: (err as Error).message }, 'could not drop the intents of destroyed objects; reconciliation will');
  });
}

async function destroyLogged(services: Services, keyId: string, destroy: () => Promise<unknown>, object?: string): Promise<boolean> {
  try {
    await destroy();
    return true;
  } catch (err) {
    services.log.error({ keyId, ...(object ? { object } : {}), err: (err as Error).message }, 'could not destroy unreferenced token objects; reconciliation will');
    return false;
  }
}

/** The ref that finds one recorded material version in the token. */
export function materialRefOf(keyId: string, material: { version: number; creationId?: string }): MaterialRef {
  return material.creationId ? { keyId, version: material.version, creationId: material.creationId } : { keyId, version: material.version };
}
