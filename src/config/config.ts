import * as fs from 'node:fs';
import * as path from 'node:path';
import type { HsmProfile } from '../custody/hsm-profile';
import { DEFAULT_JOURNAL_FROM_BYTES } from '../store/json/store-journal';
import { readJsonFile } from './json-file';

export type AuthMode = 'strict' | 'permissive';

export interface Config {
  host: string;
  port: number;
  /** Metadata store, rendered SoftHSM2 config and (for SoftHSM2) the token live here. */
  dataDir: string;
  /** Account id that permissive mode maps every caller to. */
  accountId: string;
  auth: AuthMode;
  /** Access keys for strict mode (README.md, Configuration). */
  credentialsFile: string | undefined;
  /** HSM profile file (native-config/*.json). */
  hsmProfile: string;
  /** Overrides the profile's PIN; P11KMS_PIN sets it. Never logged. */
  pin: string | undefined;
  /**
   * A file holding the PIN (a systemd credential: LoadCredential= and %d/<name>); read at
   * start-up, surrounding whitespace ignored. P11KMS_PIN_FILE sets it.
   */
  pinFile: string | undefined;
  logLevel: string;
  /** How often the deletion sweeper looks for keys whose waiting period has ended. */
  sweepIntervalSeconds: number;
  /**
   * Shifts the service clock (SigV4 skew checks and key lifecycle alike). For tests that
   * move time forward, with clients signing at the same offset; keep 0 in production.
   */
  clockOffsetSeconds: number;
  /** Largest accepted request body in bytes. */
  maxBodyBytes: number;
  /** Audit trail directory; default <dataDir>/audit (see docs/audit.md). */
  auditDir: string | undefined;
  /** Trail files are rotated at this size or age, whichever comes first. */
  auditMaxFileBytes: number;
  auditRotationSeconds: number;
  /** 'always' (fsync before responding), 'batch' (fsync within 1 s) or 'none'. */
  auditFsync: 'always' | 'batch' | 'none';
  /**
   * auditFsync 'always': batches whose fdatasync may run at once (1: classic group commit,
   * the batch grows while the previous flush runs). Raise it for a disk that completes
   * concurrent flushes together and is slow to flush (docs/audit.md, Durability).
   */
  auditSyncsInFlight: number;
  /** Bound on records chained but not yet covered by a signed digest (docs/audit.md). */
  auditUnsignedMaxSeconds: number;
  auditUnsignedMaxRecords: number;
  /** The audit signing key rotates when this many days old (0: only by `audit rotate-key`). */
  auditSigningKeyRotationDays: number;
  /**
   * Huawei Cloud / Open Telekom Cloud dialect: project id → account and region. The file
   * takes {"<projectId>": {"region": "eu-de", "accountId": "111122223333"}}; the environment
   * P11KMS_HUAWEI_PROJECTS takes "projectId=region:account,...". Unlisted project ids map
   * to `accountId` in `huaweiDefaultRegion`.
   */
  huaweiProjects: Record<string, HuaweiProject>;
  huaweiDefaultRegion: string;
  /** Keys, aliases and imported material created at start-up, idempotently (docs/seed-file.md). */
  seedFile: string | undefined;
  /** PEM certificate chain and private key: with both set the listener is HTTPS (TLS 1.2+). */
  tlsCert: string | undefined;
  tlsKey: string | undefined;
  /** PEM CA bundle: clients must present a certificate it issued (mutual TLS). */
  tlsClientCa: string | undefined;
  /**
   * Request quotas per account and region (requests per second per class, see src/server/quotas.ts):
   * 'off', 'aws' (AWS's default values) or an object overriding some classes of 'aws'.
   * P11KMS_REQUEST_QUOTAS takes 'off', 'aws' or 'symmetric=100,rsa=10,...'.
   */
  requestQuotas: 'off' | 'aws' | Record<string, number>;
  /**
   * AWS's resource quota "Grants per KMS key" (developer guide, Resource quotas: 50,000,
   * adjustable on request): CreateGrant beyond it is LimitExceededException.
   */
  grantsPerKey: number;
  /** SIGTERM: how long in-flight requests may take to finish before connections are cut. */
  drainSeconds: number;
  /** postgres://… puts the metadata in PostgreSQL, shared by several processes and hosts; unset: the JSON file in dataDir. */
  storeUrl: string | undefined;
  /**
   * JSON store: once metadata.json is this large, commits are appended to metadata.journal
   * instead of rewriting the file whole; the file is rewritten in the background when the
   * journal reaches this size, 64 KiB or a quarter of the file, whichever is largest.
   */
  storeJournalFromBytes: number;
  /** Serving processes on this host sharing the port (more than one needs a shared store). */
  workers: number;
  /**
   * Custom key stores of type AWS_CLOUDHSM: the PKCS#11 tokens a CloudHsmClusterId may name,
   * as cluster id → HSM profile file (the profile's PIN is ignored: the store's
   * KeyStorePassword is the PIN). Environment: "cluster-id=/path/profile.json,...".
   */
  tokenBackends: Record<string, string>;
  /** The XKS proxy listener's settings file (docs/xks.md); none: no XKS listener. */
  xksProxyFile: string | undefined;
  /** Extra CA certificates (PEM) trusted for XKS proxies of external key stores, beside the system roots. */
  xksTrustedCaFile: string | undefined;
  /** Port of every XKS proxy call. AWS always uses 443; tests point it at a proxy on another port. */
  xksProxyPort: number;
  /** Deadline of one XKS proxy call (TCP + TLS + HTTP), as AWS's 250 ms. */
  xksProxyTimeoutMs: number;
  /**
   * How long a creation intent protects a token object being made from reconciliation
   * (docs/key-custody.md): far longer than tokenCallTimeoutSeconds.
   */
  intentLeaseSeconds: number;
  /** A token call that has not answered after this long fails its request with DependencyTimeoutException. */
  tokenCallTimeoutSeconds: number;
  /**
   * A PostgreSQL store call (a statement, a connection, a wait for a free connection or for a
   * key's mutation lock) that has not answered after this long fails its request with
   * DependencyTimeoutException instead of leaving the client waiting for ever.
   */
  storeCallTimeoutSeconds: number;
  /**
   * A pooled PostgreSQL connection idle at least this long is asked a trivial statement before
   * a request uses it (0: every time), so one whose server went away unheard while it sat idle
   * costs no request the store deadline. Connections in constant use are never asked.
   */
  storeIdleCheckAfterMs: number;
  /** How long that check may take (at most storeCallTimeoutSeconds) before the connection is destroyed and another taken. */
  storeIdleCheckTimeoutMs: number;
  /**
   * Key material objects in the token that no record or intent names (a store restored from
   * an older backup than the token): 'keep' them and report them (default), or 'destroy' them
   * at start-up, when the operator has made sure they belong to no store (docs/key-custody.md).
   */
  unknownTokenObjects: 'keep' | 'destroy';
}

export interface HuaweiProject {
  region: string;
  accountId: string;
}

export const DEFAULTS: Config = {
  host: '127.0.0.1',
  port: 4599,
  dataDir: './var',
  accountId: '111122223333',
  auth: 'permissive',
  credentialsFile: undefined,
  hsmProfile: path.resolve(__dirname, '..', '..', '..', 'native-config', 'softhsm2.json'),
  pin: undefined,
  pinFile: undefined,
  logLevel: 'info',
  sweepIntervalSeconds: 60,
  clockOffsetSeconds: 0,
  maxBodyBytes: 1024 * 1024,
  auditDir: undefined,
  auditMaxFileBytes: 64 * 1024 * 1024,
  auditRotationSeconds: 3600,
  auditFsync: 'always',
  auditSyncsInFlight: 1,
  auditUnsignedMaxSeconds: 60,
  auditUnsignedMaxRecords: 10_000,
  auditSigningKeyRotationDays: 365,
  huaweiProjects: {},
  huaweiDefaultRegion: 'eu-de',
  seedFile: undefined,
  tlsCert: undefined,
  tlsKey: undefined,
  tlsClientCa: undefined,
  requestQuotas: 'off',
  grantsPerKey: 50_000,
  drainSeconds: 30,
  storeUrl: undefined,
  storeJournalFromBytes: DEFAULT_JOURNAL_FROM_BYTES,
  workers: 1,
  tokenBackends: {},
  xksProxyFile: undefined,
  xksTrustedCaFile: undefined,
  xksProxyPort: 443,
  xksProxyTimeoutMs: 250,
  intentLeaseSeconds: 300,
  tokenCallTimeoutSeconds: 30,
  storeCallTimeoutSeconds: 30,
  storeIdleCheckAfterMs: 250,
  storeIdleCheckTimeoutMs: 500,
  unknownTokenObjects: 'keep',
};

/** Environment variables and the config keys they set. */
const ENVIRONMENT: Record<string, keyof Config> = {
  P11KMS_HOST: 'host',
  P11KMS_PORT: 'port',
  P11KMS_DATA_DIR: 'dataDir',
  P11KMS_ACCOUNT_ID: 'accountId',
  P11KMS_AUTH: 'auth',
  P11KMS_CREDENTIALS_FILE: 'credentialsFile',
  P11KMS_HSM_PROFILE: 'hsmProfile',
  P11KMS_PIN: 'pin',
  P11KMS_PIN_FILE: 'pinFile',
  P11KMS_LOG_LEVEL: 'logLevel',
  P11KMS_SWEEP_INTERVAL_SECONDS: 'sweepIntervalSeconds',
  P11KMS_INTENT_LEASE_SECONDS: 'intentLeaseSeconds',
  P11KMS_TOKEN_CALL_TIMEOUT_SECONDS: 'tokenCallTimeoutSeconds',
  P11KMS_STORE_CALL_TIMEOUT_SECONDS: 'storeCallTimeoutSeconds',
  P11KMS_STORE_IDLE_CHECK_AFTER_MS: 'storeIdleCheckAfterMs',
  P11KMS_STORE_IDLE_CHECK_TIMEOUT_MS: 'storeIdleCheckTimeoutMs',
  P11KMS_UNKNOWN_TOKEN_OBJECTS: 'unknownTokenObjects',
  P11KMS_CLOCK_OFFSET_SECONDS: 'clockOffsetSeconds',
  P11KMS_MAX_BODY_BYTES: 'maxBodyBytes',
  P11KMS_AUDIT_DIR: 'auditDir',
  P11KMS_AUDIT_MAX_FILE_BYTES: 'auditMaxFileBytes',
  P11KMS_AUDIT_ROTATION_SECONDS: 'auditRotationSeconds',
  P11KMS_AUDIT_FSYNC: 'auditFsync',
  P11KMS_AUDIT_SYNCS_IN_FLIGHT: 'auditSyncsInFlight',
  P11KMS_AUDIT_UNSIGNED_MAX_SECONDS: 'auditUnsignedMaxSeconds',
  P11KMS_AUDIT_UNSIGNED_MAX_RECORDS: 'auditUnsignedMaxRecords',
  P11KMS_AUDIT_SIGNING_KEY_ROTATION_DAYS: 'auditSigningKeyRotationDays',
  P11KMS_HUAWEI_PROJECTS: 'huaweiProjects',
  P11KMS_HUAWEI_DEFAULT_REGION: 'huaweiDefaultRegion',
  P11KMS_SEED_FILE: 'seedFile',
  P11KMS_TLS_CERT: 'tlsCert',
  P11KMS_TLS_KEY: 'tlsKey',
  P11KMS_TLS_CLIENT_CA: 'tlsClientCa',
  P11KMS_REQUEST_QUOTAS: 'requestQuotas',
  P11KMS_GRANTS_PER_KEY: 'grantsPerKey',
  P11KMS_DRAIN_SECONDS: 'drainSeconds',
  P11KMS_STORE_URL: 'storeUrl',
  P11KMS_STORE_JOURNAL_FROM_BYTES: 'storeJournalFromBytes',
  P11KMS_WORKERS: 'workers',
  P11KMS_TOKEN_BACKENDS: 'tokenBackends',
  P11KMS_XKS_PROXY_FILE: 'xksProxyFile',
  P11KMS_XKS_TRUSTED_CA_FILE: 'xksTrustedCaFile',
  P11KMS_XKS_PROXY_PORT: 'xksProxyPort',
  P11KMS_XKS_PROXY_TIMEOUT_MS: 'xksProxyTimeoutMs',
};

const NUMERIC: ReadonlySet<keyof Config> = new Set(['port', 'sweepIntervalSeconds', 'clockOffsetSeconds', 'maxBodyBytes', 'auditMaxFileBytes', 'auditSyncsInFlight', 'auditRotationSeconds', 'drainSeconds', 'workers', 'auditUnsignedMaxSeconds', 'auditUnsignedMaxRecords', 'auditSigningKeyRotationDays', 'xksProxyPort', 'xksProxyTimeoutMs', 'intentLeaseSeconds', 'tokenCallTimeoutSeconds', 'storeCallTimeoutSeconds', 'storeIdleCheckAfterMs', 'storeIdleCheckTimeoutMs', 'grantsPerKey', 'storeJournalFromBytes']);

/**
 * Builds the config from defaults, then a JSON file, then the environment, then flags
 * (later wins). Throws with a message naming the offending setting.
 */
export function loadConfig(
  options: { file?: string; env?: NodeJS.ProcessEnv; flags?: Partial<Record<keyof Config, string>> } = {},
): Config {
  const raw: Record<string, unknown> = { ...DEFAULTS };
  if (options.file) {
    const fromFile = readJsonFile(options.file) as Record<string, unknown>;
    for (const [k, v] of Object.entries(fromFile)) {
      if (!(k in DEFAULTS)) throw new Error(`unknown setting '${k}' in ${options.file}`);
      raw[k] = v;
    }
  }
  const env = options.env ?? process.env;
  for (const [variable, key] of Object.entries(ENVIRONMENT)) {
    if (env[variable] !== undefined && env[variable] !== '') raw[key] = env[variable];
  }
  for (const [k, v] of Object.entries(options.flags ?? {})) {
    if (v !== undefined) raw[k] = v;
  }
  for (const key of NUMERIC) {
    const n = Number(raw[key]);
    if (!Number.isFinite(n)) throw new Error(`setting ${key} must be a number, got '${String(raw[key])}'`);
    raw[key] = n;
  }
  const config = raw as unknown as Config;
  if (config.auth !== 'strict' && config.auth !== 'permissive') {
    throw new Error(`setting auth must be 'strict' or 'permissive', got '${String(config.auth)}'`);
  }
  if (!/^\d{12}$/.test(config.accountId)) throw new Error(`setting accountId must be 12 digits, got '${config.accountId}'`);
  if (config.auth === 'strict' && !config.credentialsFile) {
    throw new Error('strict authentication needs a credentials file (P11KMS_CREDENTIALS_FILE or --credentials-file)');
  }
  config.huaweiProjects = parseHuaweiProjects(raw.huaweiProjects);
  if (!['keep', 'destroy'].includes(config.unknownTokenObjects)) {
    throw new Error(`setting unknownTokenObjects must be 'keep' or 'destroy', got '${String(config.unknownTokenObjects)}'`);
  }
  if (!['always', 'batch', 'none'].includes(config.auditFsync)) {
    throw new Error(`setting auditFsync must be 'always', 'batch' or 'none', got '${String(config.auditFsync)}'`);
  }
  if (!(config.auditMaxFileBytes > 0 && config.auditRotationSeconds > 0)) throw new Error('settings auditMaxFileBytes and auditRotationSeconds must be positive');
  if (!(Number.isInteger(config.auditSyncsInFlight) && config.auditSyncsInFlight >= 1 && config.auditSyncsInFlight <= 64)) {
    throw new Error(`setting auditSyncsInFlight must be a whole number from 1 to 64, got '${String(config.auditSyncsInFlight)}'`);
  }
  if ((config.tlsCert === undefined) !== (config.tlsKey === undefined)) throw new Error('settings tlsCert and tlsKey go together: set both or neither');
  if (config.tlsClientCa && !config.tlsCert) throw new Error('setting tlsClientCa (mutual TLS) needs tlsCert and tlsKey');
  config.requestQuotas = parseRequestQuotas(raw.requestQuotas);
  if (!Number.isInteger(config.workers) || config.workers < 1) throw new Error(`setting workers must be a whole number from 1, got '${String(raw.workers)}'`);
  if (!(config.storeCallTimeoutSeconds > 0)) throw new Error(`setting storeCallTimeoutSeconds must be positive, got '${String(raw.storeCallTimeoutSeconds)}'`);
  if (!(config.storeIdleCheckAfterMs >= 0 && config.storeIdleCheckTimeoutMs > 0)) {
    throw new Error('settings storeIdleCheckAfterMs must be 0 or more and storeIdleCheckTimeoutMs positive');
  }
  if (!Number.isInteger(config.grantsPerKey) || config.grantsPerKey < 1) throw new Error(`setting grantsPerKey must be a whole number from 1, got '${String(raw.grantsPerKey)}'`);
  if (!Number.isSafeInteger(config.storeJournalFromBytes) || config.storeJournalFromBytes < 0) {
    throw new Error(`setting storeJournalFromBytes must be a whole number from 0, got '${String(raw.storeJournalFromBytes)}'`);
  }
  if (config.workers > 1 && !isSharedStoreUrl(config.storeUrl)) {
    throw new Error(
      `workers ${config.workers} needs the PostgreSQL store (P11KMS_STORE_URL=postgres://…): the JSON store under dataDir is written by one process only`,
    );
  }
  if (!(config.auditUnsignedMaxSeconds > 0 && config.auditUnsignedMaxRecords >= 1)) throw new Error('settings auditUnsignedMaxSeconds and auditUnsignedMaxRecords must be positive');
  if (!(config.auditSigningKeyRotationDays >= 0)) throw new Error('setting auditSigningKeyRotationDays must be 0 or more');
  config.tokenBackends = parseTokenBackends(raw.tokenBackends);
  if (!(config.xksProxyTimeoutMs > 0 && Number.isInteger(config.xksProxyPort) && config.xksProxyPort > 0 && config.xksProxyPort < 65536)) {
    throw new Error('settings xksProxyTimeoutMs must be positive and xksProxyPort a TCP port');
  }
  config.dataDir = path.resolve(config.dataDir);
  config.auditDir = path.resolve(config.auditDir ?? path.join(config.dataDir, 'audit'));
  return config;
}

/** 'off', 'aws', an object of class → rate, or the environment's "class=rate,..." form. */
function parseRequestQuotas(value: unknown): Config['requestQuotas'] {
  if (value === 'off' || value === 'aws') return value;
  const entries: [string, unknown][] =
    typeof value === 'string'
      ? value.split(',').filter((e) => e.trim() !== '').map((e) => e.trim().split('=') as [string, string])
      : value && typeof value === 'object' ? Object.entries(value) : [];
  if (entries.length === 0) throw new Error(`setting requestQuotas must be 'off', 'aws' or class=rate pairs, got '${String(value)}'`);
  const out: Record<string, number> = {};
  for (const [name, rate] of entries) {
    const n = Number(rate);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`setting requestQuotas: '${name}' needs a positive number of requests per second`);
    out[name] = n;
  }
  return out;
}

/** A postgres:// store URL: the metadata is shared by every process and host that names it. */
export function isSharedStoreUrl(storeUrl: string | undefined): boolean {
  return storeUrl !== undefined && /^postgres(ql)?:\/\//.test(storeUrl);
}

/** Accepts the file's object form or the environment's "projectId=region:account,..." form. */
function parseHuaweiProjects(value: unknown): Record<string, HuaweiProject> {
  const out: Record<string, HuaweiProject> = {};
  const entries: [string, unknown][] =
    typeof value === 'string'
      ? value.split(',').filter((e) => e.trim() !== '').map((e) => {
          const [id, rest = ''] = e.trim().split('=');
          const [region, accountId] = rest.split(':');
          return [id, { region, accountId }];
        })
      : Object.entries((value ?? {}) as Record<string, unknown>);
  for (const [id, project] of entries) {
    const p = project as Partial<HuaweiProject> | undefined;
    if (!id || !p || typeof p.region !== 'string' || !/^[a-z0-9-]{1,32}$/.test(p.region) || typeof p.accountId !== 'string' || !/^\d{12}$/.test(p.accountId)) {
      throw new Error(`setting huaweiProjects: '${id}' needs a region and a 12-digit accountId (projectId=region:account)`);
    }
    out[id] = { region: p.region, accountId: p.accountId };
  }
  return out;
}

/** Accepts the file's object form or the environment's "cluster-id=/path/profile.json,..." form. */
function parseTokenBackends(value: unknown): Record<string, string> {
  const entries: [string, unknown][] =
    typeof value === 'string'
      ? value.split(',').filter((e) => e.trim() !== '').map((e) => {
          const eq = e.indexOf('=');
          return [e.slice(0, eq).trim(), e.slice(eq + 1).trim()];
        })
      : Object.entries((value ?? {}) as Record<string, unknown>);
  const out: Record<string, string> = {};
  for (const [clusterId, file] of entries) {
    // The pattern of CloudHsmClusterId in the AWS model, so AWS clients can name the backend.
    if (!/^cluster-[2-7a-zA-Z]{11,16}$/.test(clusterId) || typeof file !== 'string' || file === '') {
      throw new Error(`setting tokenBackends: '${clusterId}' must match cluster-[2-7a-zA-Z]{11,16} and name an HSM profile file`);
    }
    out[clusterId] = path.resolve(file);
  }
  return out;
}

/** Reads an HSM profile; relative paths inside it resolve against the profile's folder. */
export function loadHsmProfile(config: Config): HsmProfile {
  return readHsmProfile(config.hsmProfile, config);
}

/**
 * A token backend's profile: its PIN is the custom key store's KeyStorePassword, so the
 * file's `pin` is ignored and the token is never initialised by p11kms.
 */
export function loadBackendProfile(file: string): HsmProfile {
  return { ...readHsmProfile(file, undefined), pin: '', initializeToken: false };
}

function readHsmProfile(profileFile: string, config: Config | undefined): HsmProfile {
  const pinRequired = config !== undefined;
  const file = path.resolve(profileFile);
  const profile = readJsonFile(file) as HsmProfile;
  for (const field of ['name', 'module', 'tokenLabel', ...(pinRequired ? (['pin'] as const) : [])] as const) {
    if (typeof profile[field] !== 'string' || profile[field] === '') {
      throw new Error(`HSM profile ${file} needs '${field}'`);
    }
  }
  if (config?.pin && config.pinFile) throw new Error('settings pin and pinFile exclude each other: give the PIN one way');
  if (config?.pin) profile.pin = config.pin;
  if (config?.pinFile) {
    try {
      profile.pin = fs.readFileSync(config.pinFile, 'utf8').trim();
    } catch (err) {
      throw new Error(`PIN file ${config.pinFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  if (profile.softhsm2ConfTemplate) profile.softhsm2ConfTemplate = path.resolve(path.dirname(file), profile.softhsm2ConfTemplate);
  profile.sessionPoolSize ??= 8;
  profile.sessionQueueLimit ??= 1024;
  profile.sessionQueueMaxWaitMs ??= 1000;
  profile.initializeToken ??= false;
  if (profile.cryptoThreads !== undefined && !(Number.isInteger(profile.cryptoThreads) && profile.cryptoThreads >= 0 && profile.cryptoThreads <= 64)) {
    throw new Error(`HSM profile ${file}: cryptoThreads must be a whole number from 0 to 64, got ${JSON.stringify(profile.cryptoThreads)}`);
  }
  if (profile.cryptoThreads && !profile.cryptoThreadMechanisms?.length) throw new Error(`HSM profile ${file}: cryptoThreads needs cryptoThreadMechanisms, the mechanisms whose calls run on them`);
  profile.quirks = {
    gcmTagFailureIsGeneralError: profile.quirks?.gcmTagFailureIsGeneralError ?? false,
    kwpUnwrapKeepsPadding: profile.quirks?.kwpUnwrapKeepsPadding ?? false,
    ...(profile.quirks?.lookupsCorruptObjectsBeingWritten ? { lookupsCorruptObjectsBeingWritten: true } : {}),
    ...(profile.quirks?.oaepHashesInToken ? { oaepHashesInToken: profile.quirks.oaepHashesInToken } : {}),
    ...(profile.quirks?.rfc5649Mechanism ? { rfc5649Mechanism: profile.quirks.rfc5649Mechanism } : {}),
    ...(profile.quirks?.maxSecretBytes ? { maxSecretBytes: profile.quirks.maxSecretBytes } : {}),
    ...(profile.quirks?.integrityFailureCodes ? { integrityFailureCodes: profile.quirks.integrityFailureCodes } : {}),
    ...(profile.quirks?.exportsNonExtractableKeys ? { exportsNonExtractableKeys: true } : {}),
    ...(profile.quirks?.unsupportedKeySpecs ? { unsupportedKeySpecs: profile.quirks.unsupportedKeySpecs } : {}),
    ...(profile.quirks?.unwrappablePrivateKeySpecs ? { unwrappablePrivateKeySpecs: profile.quirks.unwrappablePrivateKeySpecs } : {}),
  };
  return profile;
}
