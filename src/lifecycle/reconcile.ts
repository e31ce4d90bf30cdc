import type { Services } from '../operations';
import type { KeyRecord } from '../store/records';

export interface ReconcileReport {
  /** Token objects p11kms created but the store never recorded (a crash mid-CreateKey); destroyed. */
  orphansDestroyed: string[];
  /** Keys whose recorded material is missing from the token; they fail with KeyUnavailableException. */
  missingMaterial: Array<{ keyId: string; version: number }>;
  /** Import wrapping key pairs no unexpired import parameters refer to; destroyed. */
  wrappingKeysDestroyed: string[];
  /** Unreferenced objects left in place because other processes share the token (see below). */
  unreferencedKept: string[];
}

/**
 * Makes the store and the token agree at start-up. Material is created in the token before
 * the store records it, and the store forgets a deleted key before its material is
 * destroyed, so a token object no key refers to is always a leftover of a crash and is
 * destroyed; recorded material missing from the token is reported, never hidden.
 */
export async function reconcile(services: Services, options: { sharedToken?: boolean } = {}): Promise<ReconcileReport> {
  // One record per region: the regions of a multi-Region key refer to the same token objects,
  // and an object is kept when any record refers to it.
  const records = await services.store.listKeys();
  const keys = new Map<string, KeyRecord[]>();
  for (const k of records) keys.set(k.keyId, [...(keys.get(k.keyId) ?? []), k]);
  const inToken = await services.custody.listMaterial();
  const present = new Set(inToken.map((m) => `${m.keyId}:${m.version}`));
  const report: ReconcileReport = { orphansDestroyed: [], missingMaterial: [], wrappingKeysDestroyed: [], unreferencedKept: [] };
  // Imported material the store marks PENDING_IMPORT (deleted or expired, or imported just
  // before a crash) must not survive either: only material the store says is there is kept.
  const recorded = (regions: readonly KeyRecord[] | undefined, version: number) =>
    (regions ?? []).some((key) => key.materials.some((m) => m.version === version && (m.imported === undefined || m.imported.importState === 'IMPORTED')));

  for (const material of inToken) {
    const regions = keys.get(material.keyId);
    // Material of AWS_CLOUDHSM custom key stores belongs in their backend tokens, never in this one.
    if (recorded(regions, material.version) && !regions?.some((k) => k.origin === 'AWS_CLOUDHSM')) continue;
    // With several processes on one token, an unrecorded object may be one another process
    // has just made and is about to record: it is reported, never destroyed here.
    if (options.sharedToken) {
      report.unreferencedKept.push(`${material.keyId}:v${material.version}`);
      continue;
    }
    await services.custody.destroy(material);
    report.orphansDestroyed.push(`${material.keyId}:v${material.version}`);
    services.log.warn({ keyId: material.keyId, version: material.version }, 'destroyed a token object no key refers to');
  }
  for (const wrapping of await services.custody.importer.listWrappingKeys()) {
    if (keys.get(wrapping.keyId)?.some((k) => k.importParameters?.some((p) => p.wrappingId === wrapping.wrappingId))) continue;
    if (options.sharedToken) {
      report.unreferencedKept.push(`${wrapping.keyId}:${wrapping.wrappingId}`);
      continue;
    }
    await services.custody.importer.destroyWrappingKey(wrapping);
    report.wrappingKeysDestroyed.push(`${wrapping.keyId}:${wrapping.wrappingId}`);
    services.log.warn({ keyId: wrapping.keyId }, 'destroyed an import wrapping key no import parameters refer to');
  }
  for (const key of records) {
    // Material of AWS_CLOUDHSM custom key stores is in their backend tokens, not this one.
    if (key.origin === 'AWS_CLOUDHSM') continue;
    for (const m of key.materials) {
      if (m.imported && m.imported.importState !== 'IMPORTED') continue;
      if (present.has(`${key.keyId}:${m.version}`)) continue;
      report.missingMaterial.push({ keyId: key.keyId, version: m.version });
      services.log.error({ keyId: key.keyId, arn: key.arn, version: m.version }, 'key material is missing from the token');
    }
  }
  return report;
}
