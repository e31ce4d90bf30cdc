import { type KeyCustody, materialLabel, parseMaterialLabel } from '../custody/key-custody';
import { parseWrappingLabel } from '../custody/key-import';
import { BackgroundLockLostError } from '../errors';
import type { Services } from '../operations';
import { materialRefOf } from '../operations/shared/key-mutation';
import type { CreationIntent, KeyMaterialRecord, KeyRecord } from '../store/records';

export interface ReconcileReport {
  /** Token objects a removal or a dead creation named (a crash, a lost race, a failed destroy); destroyed. */
  orphansDestroyed: string[];
  /**
   * Key material objects nothing names: no key's record, no intent. The store cannot have
   * made them unreferenced (every removal leaves an intent until its objects are gone), so
   * they belong to keys it never recorded: a store older than the token. Kept and reported.
   */
  unknownKept: string[];
  /** Keys whose recorded material is missing from the token; they fail with KeyUnavailableException. */
  missingMaterial: Array<{ keyId: string; version: number }>;
  /**
   * Material whose creation id (or label, before creation ids) names several token objects of
   * one class: an object copied in from outside, material from before creation ids. Kept and
   * reported; decryption tries each, new results use one every process agrees on
   * (ObjectLookup.candidates). The operator removes the one that is not the key.
   */
  duplicateMaterial: string[];
  /** Import wrapping key pairs no import parameters refer to; destroyed. */
  wrappingKeysDestroyed: string[];
  /** Intents of creations that died (a crash, an expired lease); their objects destroyed. */
  deadIntents: number;
  /** Embedded-token object files a crash left half-made; removed (see ReconcileOptions). */
  remnantFilesRemoved: number;
}

export interface ReconcileOptions {
  /**
   * Whether an intent may still belong to a running creation. At start-up on a store with a
   * single writer, none can; otherwise intents younger than the lease are left alone.
   */
  intentAlive: (intent: CreationIntent) => boolean;
  /** Destroy objects that carry neither label nor CKA_ID (torn by a crash): only when no creation can be running. */
  destroyUnmarked: boolean;
  /**
   * Shared token: remove the embedded token's object files a crash left half-made (which no
   * lookup reaches) once nobody has written them for this long. A single writer's start-up
   * removes them before the token is opened instead.
   */
  remnantFilesOlderThanMs?: number;
  /**
   * Start-up: refuse, destroying nothing, when the store holds no key and no intent while the
   * token holds p11kms key objects. Such a store never recorded them: it is the wrong one (a
   * moved or deleted metadata.json, a new PostgreSQL database not yet migrated into), and
   * reconciling would destroy every key of the token as an orphan.
   */
  refuseEmptyStore?: boolean;
  /** Destroy material objects nothing names instead of keeping them (an operator's explicit choice, start-up only). */
  destroyUnknown?: boolean;
}

/** Default lease of a creation intent: far longer than any token call may take (see tokenCallTimeoutMs). */
export const DEFAULT_INTENT_LEASE_MS = 5 * 60 * 1000;

/** Start-up: with a single-writer store every intent is dead; otherwise the lease decides. */
export function startupReconcileOptions(services: Services, leaseMs: number, dedicatedToken: boolean, destroyUnknown = false): ReconcileOptions {
  const now = services.clock.now();
  return services.store.singleWriter
    ? { intentAlive: () => false, destroyUnmarked: dedicatedToken, refuseEmptyStore: !destroyUnknown, destroyUnknown }
    : { intentAlive: (i) => i.createdAt > now - leaseMs, destroyUnmarked: false, remnantFilesOlderThanMs: leaseMs, refuseEmptyStore: !destroyUnknown, destroyUnknown };
}

/** Periodic reconciliation while requests run: intents within their lease are alive. */
export function periodicReconcileOptions(services: Services, leaseMs: number): ReconcileOptions {
  const now = services.clock.now();
  return { intentAlive: (i) => i.createdAt > now - leaseMs, destroyUnmarked: false, remnantFilesOlderThanMs: services.store.singleWriter ? undefined : leaseMs };
}

/**
 * The token one reconciliation looks at, and the keys whose material must be in it (only
 * those can be missing from it). What is referenced does not depend on the token: a creation
 * id is drawn once for one token, so every key's record counts, whichever token or store it
 * belongs to. That also keeps, in a backend token, the objects of every store on it (several
 * stores may name clusters that are one token, or clusters of one lineage).
 */
export interface ReconcileScope {
  custody: KeyCustody;
  /** Read after the keys: which keys (and removals) keep their material in this token. */
  holds(): Promise<(key: Placement) => boolean>;
  /** Names the token in the log lines (a custom key store's backend); nothing for the main token. */
  logFields: Record<string, string>;
}

/**
 * Where a key's material lives: the main token, or an AWS_CLOUDHSM store's backend token (for
 * a removal, also the store's cluster as it was, which outlives a deleted store).
 */
type Placement = Pick<KeyRecord, 'origin' | 'customKeyStoreId'> & { cloudHsmClusterId?: string };

/** A removal intent names the backend token's store (and its cluster) when its objects are there. */
function placementOf(intent: CreationIntent): Placement {
  return intent.customKeyStoreId === undefined
    ? { origin: 'AWS_KMS' }
    : { origin: 'AWS_CLOUDHSM', customKeyStoreId: intent.customKeyStoreId, ...(intent.cloudHsmClusterId !== undefined ? { cloudHsmClusterId: intent.cloudHsmClusterId } : {}) };
}

export function mainTokenScope(services: Services): ReconcileScope {
  // Material of AWS_CLOUDHSM custom key stores is in their backend tokens, never in this one.
  return { custody: services.custody, holds: async () => (key) => key.origin !== 'AWS_CLOUDHSM', logFields: {} };
}

/**
 * A connected AWS_CLOUDHSM store's backend token: the keys of every store whose cluster is
 * this very token (same module and token label) keep their material there. A store of another
 * cluster of the same lineage keeps its own keys in its own token, which they may be missing
 * from here without anything being wrong.
 */
export function backendTokenScope(services: Services, customKeyStoreId: string, custody: KeyCustody): ReconcileScope {
  return {
    custody,
    logFields: { customKeyStoreId },
    holds: async () => {
      const stores = await services.store.listCustomKeyStores();
      const cluster = stores.find((s) => s.customKeyStoreId === customKeyStoreId)?.cloudHsmClusterId;
      const backends = services.keyStores?.backends;
      const here = new Set(stores.filter((s) => cluster && s.cloudHsmClusterId && backends?.sameToken(s.cloudHsmClusterId, cluster)).map((s) => s.customKeyStoreId));
      const existing = new Set(stores.map((s) => s.customKeyStoreId));
      // A store deleted since its removal was committed: the cluster it was on says which token.
      const onThisTokenOnceDeleted = (p: Placement) =>
        !existing.has(p.customKeyStoreId ?? '') && cluster !== undefined && p.cloudHsmClusterId !== undefined && !!backends?.sameToken(p.cloudHsmClusterId, cluster);
      return (key) => key.origin === 'AWS_CLOUDHSM' && (here.has(key.customKeyStoreId ?? '') || onThisTokenOnceDeleted(key));
    },
  };
}

/**
 * Periodic reconciliation of the backend tokens this process has open (its CONNECTED
 * AWS_CLOUDHSM stores), each token once. Each holds its token (a Disconnect meanwhile closes
 * it afterwards); a store disconnected before is skipped.
 */
export async function reconcileBackends(services: Services, options: ReconcileOptions): Promise<void> {
  const done: string[] = [];
  for (const { customKeyStoreId, clusterId, custody } of services.keyStores?.connectedBackends() ?? []) {
    if (done.some((c) => services.keyStores!.backends.sameToken(c, clusterId))) continue;
    const release = custody.hold();
    if (!release) continue;
    done.push(clusterId);
    await reconcile(services, options, backendTokenScope(services, customKeyStoreId, custody))
      .catch((err: unknown) => {
        // The background-work lock is gone: the pass stops (the store stepped this process down).
        if (err instanceof BackgroundLockLostError) throw err;
        services.log.error({ customKeyStoreId, err: (err as Error).message }, 'reconciliation of a backend token failed');
      })
      .finally(release);
  }
}

/**
 * What the keys keep in a token: creation ids of material and import wrapping pairs, and
 * labels of material recorded before creation ids. Imported material marked PENDING_IMPORT
 * (deleted, expired) keeps nothing.
 */
export function referencesOf(keys: Iterable<KeyRecord>): { creationIds: Set<string>; labels: Set<string> } {
  const creationIds = new Set<string>();
  const labels = new Set<string>();
  for (const key of keys) {
    for (const m of key.materials) {
      if (m.imported && m.imported.importState !== 'IMPORTED') continue;
      if (m.creationId) creationIds.add(m.creationId);
      else labels.add(materialLabel({ keyId: key.keyId, version: m.version }));
    }
    for (const p of key.importParameters ?? []) creationIds.add(p.wrappingId);
  }
  return { creationIds, labels };
}

/**
 * Makes the store and one token agree (docs/key-custody.md, "Reconciliation"): the main token
 * by default, a custom key store's backend token with its scope. Every object p11kms makes
 * names its creation in CKA_ID. An object is destroyed only when a removal intent or a dead
 * creation intent names it (what a crash or a failed destroy left) and no record or live
 * intent does; an object nothing names is kept and reported. The token is listed first, then
 * intents, then keys: a creation records its material and drops its intent in one
 * transaction, and a removal forgets material and commits its removal intent in one, so this
 * order never takes a live object for an orphan (an object made after the listing is not
 * looked at). Recorded material missing from the token is reported, never hidden.
 */
export async function reconcile(
  services: Services,
  options: ReconcileOptions = periodicReconcileOptions(services, DEFAULT_INTENT_LEASE_MS),
  scope: ReconcileScope = mainTokenScope(services),
): Promise<ReconcileReport> {
  const { custody } = scope;
  const objects = await custody.objects.listObjects();
  const intents = await services.store.listIntents();
  const report: ReconcileReport = { orphansDestroyed: [], unknownKept: [], missingMaterial: [], duplicateMaterial: [], wrappingKeysDestroyed: [], deadIntents: 0, remnantFilesRemoved: 0 };
  if (options.remnantFilesOlderThanMs !== undefined) report.remnantFilesRemoved = custody.removeCrashRemnants(options.remnantFilesOlderThanMs);
  const creations = intents.filter((i) => i.purpose !== 'removal');
  const live = creations.filter((i) => options.intentAlive(i));
  let dead = creations.filter((i) => !live.includes(i));
  // A store older than the token (restored from a snapshot taken while keys were being made)
  // holds intents of creations that may have finished in the newer store: their objects are
  // kept with the others no key refers to, not destroyed (docs/key-custody.md).
  if (dead.length > 0 && options.destroyUnknown !== true && holdsUnknownMaterial(objects, intents, await services.store.listKeys())) {
    services.log.warn({ ...scope.logFields, count: dead.length, creations: dead.slice(0, 20).map((i) => `${i.keyId} (creation ${i.creationId})`) }, 'creations that did not finish are kept, not destroyed: the token holds key material this store never recorded, so it may be older than the token');
    dead = [];
  }
  // Dead creations become removals before the keys are read: a creation that commits after
  // this finds its intent changed and records nothing; one that committed before is in the
  // keys read below (its intent gone, so it is not turned into a removal).
  const removals = intents.filter((i) => i.purpose === 'removal');
  if (dead.length > 0) {
    const now = services.clock.now();
    const turned = await services.store.transact(async (tx) => {
      const still: CreationIntent[] = [];
      for (const i of dead) {
        if ((await tx.getIntent(i.creationId))?.purpose !== i.purpose) continue;
        const removal: CreationIntent = { ...i, purpose: 'removal', createdAt: now };
        tx.putIntent(removal);
        still.push(removal);
      }
      return still;
    });
    removals.push(...turned);
    report.deadIntents = turned.length;
    if (turned.length > 0) services.log.warn({ count: turned.length }, 'creations that did not finish: their objects are destroyed');
  }
  // One record per region: the regions of a multi-Region key refer to the same token objects.
  const records = await services.store.listKeys();
  const holds = await scope.holds();
  const ours = removals.filter((i) => holds(placementOf(i)));

  const { creationIds: referenced, labels: legacyLabels } = referencesOf(records);
  for (const i of live) referenced.add(i.creationId);
  const removed = removedOf(records);
  for (const i of ours) removed.add(i.legacyLabel ?? i.creationId);

  const doomedCreations = new Set<string>();
  const doomedLabels = new Set<string>();
  let unmarked = 0;
  const present = new Set<string>();
  /** Referenced material objects by name and class: more than one is a duplicate. */
  const referencedObjects = new Map<string, number>();
  const reported = new Set<string>();
  const note = (list: string[], name: string) => {
    if (!reported.has(name)) list.push(name);
    reported.add(name);
  };
  for (const o of objects) {
    const wrapping = parseWrappingLabel(o.label);
    const material = parseMaterialLabel(o.label);
    const creationId = o.creationId ?? wrapping?.wrappingId;
    const name = creationId ?? (material ? o.label : undefined);
    if (name === undefined) {
      if (o.unmarked && options.destroyUnmarked) {
        unmarked++;
        report.orphansDestroyed.push('(an object without label or id, torn by a crash)');
      }
      continue;
    }
    present.add(name);
    if (creationId !== undefined ? referenced.has(creationId) : legacyLabels.has(o.label)) {
      const object = `${name}|${o.objectClass}`;
      referencedObjects.set(object, (referencedObjects.get(object) ?? 0) + 1);
      if (material && referencedObjects.get(object) === 2) note(report.duplicateMaterial, `${material.keyId}:v${material.version}`);
      continue;
    }
    const shown = wrapping ? `${wrapping.keyId}:${wrapping.wrappingId}` : material ? `${material.keyId}:v${material.version}` : `${o.label} (creation ${creationId})`;
    // Import wrapping pairs hold nothing of value: whatever no import parameters name goes.
    const doomed = wrapping !== undefined || removed.has(name) || options.destroyUnknown === true;
    if (!doomed) {
      note(report.unknownKept, shown);
      continue;
    }
    if (o.creationId) doomedCreations.add(o.creationId);
    else doomedLabels.add(o.label);
    note(wrapping ? report.wrappingKeysDestroyed : report.orphansDestroyed, shown);
  }
  if (options.refuseEmptyStore && intents.length === 0 && records.length === 0 && report.unknownKept.length > 0) {
    throw new Error(emptyStoreRefusal(report.unknownKept));
  }
  if (doomedCreations.size + doomedLabels.size + unmarked > 0) {
    await custody.objects.destroyObjects({ creationIds: [...doomedCreations], labels: [...doomedLabels], unmarked: unmarked > 0 });
    for (const what of [...report.orphansDestroyed, ...report.wrappingKeysDestroyed]) services.log.warn({ ...scope.logFields, object: what }, 'destroyed a token object no key refers to');
  }
  // A removal is done once its objects are gone: destroyed above, or absent from the listing.
  // One absent from it may have been made (and removed) after it, its own destroy still to
  // come or failed: it is dropped only when a second listing lacks it too.
  const named = (i: CreationIntent) => i.legacyLabel ?? i.creationId;
  const unlisted = ours.filter((i) => !present.has(named(i)));
  const relisted = unlisted.length === 0 ? new Set<string>() : new Set((await custody.objects.listObjects()).map((o) => o.creationId ?? o.label));
  const done = ours.filter((i) => !relisted.has(named(i)));
  if (done.length > 0) await services.store.transact((tx) => done.forEach((i) => tx.deleteIntent(i.creationId)));
  if (report.duplicateMaterial.length > 0) {
    services.log.warn(
      { ...scope.logFields, count: report.duplicateMaterial.length, materials: report.duplicateMaterial.slice(0, 20) },
      'key material named by several token objects of one class: decryption tries each, new results use one every process agrees on; docs/key-custody.md, "Several objects under one creation id", says what to do',
    );
  }
  if (report.unknownKept.length > 0) {
    services.log.warn(
      { ...scope.logFields, count: report.unknownKept.length, objects: report.unknownKept.slice(0, 20) },
      'kept token objects no key refers to: key material this metadata store never recorded (restored from an older backup?); docs/key-custody.md, "Objects no key refers to", says what to do',
    );
  }

  const unseen: Array<{ key: KeyRecord; material: KeyMaterialRecord }> = [];
  for (const key of records) {
    if (!holds(key)) continue;
    for (const m of key.materials) {
      if (m.imported && m.imported.importState !== 'IMPORTED') continue;
      if (!present.has(objectNameOf(key, m))) unseen.push({ key, material: m });
    }
  }
  for (const { key, material } of await stillMissing(services, custody, unseen)) {
    report.missingMaterial.push({ keyId: key.keyId, version: material.version });
    services.log.error({ ...scope.logFields, keyId: key.keyId, arn: key.arn, version: material.version }, 'key material is missing from the token');
  }
  return report;
}

/**
 * Whether the token holds key material that no record, no intent and no PENDING_IMPORT
 * material names: what a store older than the token leaves. Every way p11kms stops naming
 * material leaves an intent until its objects are gone, so its own store never gets there.
 */
function holdsUnknownMaterial(objects: ReadonlyArray<{ label: string; creationId?: string }>, intents: readonly CreationIntent[], keys: readonly KeyRecord[]): boolean {
  const { creationIds, labels } = referencesOf(keys);
  const named = new Set([...creationIds, ...labels, ...removedOf(keys), ...intents.flatMap((i) => [i.creationId, ...(i.legacyLabel ? [i.legacyLabel] : [])])]);
  return objects.some((o) => parseMaterialLabel(o.label) !== undefined && parseWrappingLabel(o.label) === undefined && !named.has(o.creationId ?? o.label));
}

/** Material the records themselves mark as gone (imported material deleted or expired): its objects go. */
function removedOf(keys: Iterable<KeyRecord>): Set<string> {
  const removed = new Set<string>();
  for (const key of keys) {
    for (const m of key.materials) if (m.imported && m.imported.importState !== 'IMPORTED') removed.add(objectNameOf(key, m));
  }
  return removed;
}

function emptyStoreRefusal(objects: string[]): string {
  const named = objects.filter((o) => !o.startsWith('(')).slice(0, 3).join(', ');
  return (
    `the metadata store holds no keys, but the token holds p11kms key objects (${named}${objects.length > 3 ? ', …' : ''}): ` +
    'this store is not the one they were recorded in (metadata.json moved or deleted? a new PostgreSQL database not yet filled by `store migrate`?). ' +
    'Nothing was destroyed. Start with the store that records these keys; if every key was deleted on purpose, remove their objects from the token first.'
  );
}

/** What names a material's token object: its creation id, or for material made before creation ids, its label. */
function objectNameOf(key: KeyRecord, m: KeyMaterialRecord): string {
  return m.creationId ?? materialLabel({ keyId: key.keyId, version: m.version });
}

/**
 * The token was listed before the keys were read (the order that keeps live objects from
 * being taken for orphans), so material created or rotated in between is in the records but
 * not in that listing. Before anything is reported missing: a second listing, a lookup as a
 * request makes it (which sees an object another process was writing when SoftHSM2 listed
 * it), and then the key's record read again (material a deletion forgot meanwhile is no longer
 * named; the token is looked at first, as a deletion forgets before it destroys).
 */
async function stillMissing(services: Services, custody: KeyCustody, unseen: Array<{ key: KeyRecord; material: KeyMaterialRecord }>): Promise<typeof unseen> {
  if (unseen.length === 0) return unseen;
  const listed = new Set((await custody.objects.listObjects()).map((o) => o.creationId ?? o.label));
  const committed = services.store.fresh?.() ?? services.store;
  const missing: typeof unseen = [];
  for (const entry of unseen) {
    if (listed.has(objectNameOf(entry.key, entry.material))) continue;
    if (await custody.objects.findable(materialRefOf(entry.key.keyId, entry.material))) continue;
    const current = await committed.getKey(entry.key);
    const named = current?.materials.some((m) => objectNameOf(current, m) === objectNameOf(entry.key, entry.material) && (!m.imported || m.imported.importState === 'IMPORTED'));
    if (named) missing.push(entry);
  }
  return missing;
}
