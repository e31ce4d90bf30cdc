/**
 * What p11kms needs to know about one PKCS#11 device. Profiles live in native-config/
 * (one per vendor); device quirks are settings here rather than branches in code.
 */
export interface HsmProfile {
  /** Human name, shown in logs and /health. */
  name: string;
  /** Path of the PKCS#11 module (.so). */
  module: string;
  /** Token label to use; the first token with this label is chosen. */
  tokenLabel: string;
  /** User PIN. Prefer P11KMS_PIN in the environment; never logged. */
  pin: string;
  /**
   * Initialise a token with `tokenLabel` on a free slot (C_InitToken + C_InitPIN) when none
   * exists. Meant for SoftHSM2; real HSMs are initialised by their own tooling.
   */
  initializeToken: boolean;
  /** Security-officer PIN, only used when initializeToken is true. */
  soPin?: string;
  /**
   * SoftHSM2 only: a softhsm2.conf template whose `@TOKEN_DIR@` placeholder is replaced by
   * `<dataDir>/tokens`; the rendered file is exported as SOFTHSM2_CONF before loading.
   */
  softhsm2ConfTemplate?: string;
  /** Sessions kept open for concurrent operations (one operation per session). */
  sessionPoolSize: number;
  /**
   * In-process software tokens only: mechanisms (pkcs11js constant names, e.g. `CKM_AES_GCM`)
   * whose calls run synchronously on the event loop instead of on the libuv pool, because
   * they take a few tens of microseconds and the pool hop costs as much again. Only
   * mechanisms measured below 50 µs per call belong here; a network HSM can block for
   * milliseconds, so hardware profiles list none (the default).
   */
  synchronousMechanisms?: string[];
  /**
   * In-process software tokens only: operations use a per-process session copy of each key
   * (C_CopyObject with CKA_TOKEN false: still sensitive, never extractable, frozen) instead of
   * the token object, because SoftHSM2's file store opens and locks the object's files on every
   * use of a token object (AES-GCM 26 µs → 11 µs per call, measured). A token copies only
   * objects made modifiable, so keys made under this setting are stored with CKA_MODIFIABLE
   * true; the token still refuses to make them extractable or readable. Keys made before keep
   * working from the token object. Default false (every hardware profile): an HSM keeps each
   * use on the token object and its keys frozen.
   */
  sessionCopies?: boolean;
  /**
   * Token searches (C_FindObjects: a key's first use in a process that neither made it nor
   * listed the token since, undoing a creation, listings) run on a worker thread of their own
   * instead of the event loop. A search reads every object of the token (SoftHSM2: ~30 µs each,
   * 3 s at 100,000 objects), and on the event loop it stalls every other request of the
   * process meanwhile. The thread loads the same module with its own pkcs11js instance and
   * searches on a session of its own (search-worker.ts). Measured on SoftHSM2 2.6.1 only, so
   * default false (every hardware profile: searches stay on the event loop, as before).
   */
  searchesOffEventLoop?: boolean;
  /**
   * One-shot Encrypt, Decrypt, Sign and Verify calls with a mechanism of
   * `cryptoThreadMechanisms` run, their C_xInit included, on this many worker threads
   * (crypto-threads.ts) instead of C_xInit on the event loop and C_x on the libuv pool.
   * pkcs11js has no asynchronous C_xInit, and SoftHSM2 builds the key there (C_SignInit with a
   * P-256 session copy takes as long as the signature). Measured on SoftHSM2 2.6.1 only, so
   * default 0 (every hardware profile: as before).
   */
  cryptoThreads?: number;
  /** The mechanisms (pkcs11js constant names) whose calls `cryptoThreads` run; needed with it. */
  cryptoThreadMechanisms?: string[];
  /**
   * Load shedding by queueing time: while the operation waiting longest for a session has
   * waited longer than this (milliseconds), a new one is refused at once with
   * ThrottlingException. Bursts the sessions drain within it are served whole. Default 1000.
   */
  sessionQueueMaxWaitMs: number;
  /**
   * Load shedding's bound on memory: operations that may wait for a session when all are busy.
   * One more is refused at once with ThrottlingException. Default 1024.
   */
  sessionQueueLimit: number;
  /**
   * Initialisation string handed to C_Initialize as pReserved (NSS softokn's
   * `configdir='sql:...'`); `@TOKEN_DIR@` becomes `<dataDir>/tokens`.
   */
  moduleParameters?: string;
  quirks: HsmQuirks;
  /**
   * Token backends only (custom key stores): backends with the same lineage hold the same
   * keys (replicas or clones of one partition), so UpdateCustomKeyStore may move between them.
   */
  clusterLineage?: string;
  /** Free text for operators (ignored by code). */
  notes?: string[];
}

export interface HsmQuirks {
  /**
   * SoftHSM2 2.6 reports a failed AES-GCM tag check as CKR_GENERAL_ERROR instead of
   * CKR_ENCRYPTED_DATA_INVALID. When true, CKR_GENERAL_ERROR from a GCM decryption is
   * treated as an integrity failure (InvalidCiphertextException) rather than a device fault.
   */
  gcmTagFailureIsGeneralError: boolean;
  /**
   * SoftHSM2 2.6 returns the padded length from a CKM_AES_KEY_WRAP_PAD unwrap of a
   * generic secret whose length is not a multiple of 8. p11kms always records the true
   * length beside the wrapped key, so this only documents the behaviour.
   */
  kwpUnwrapKeepsPadding: boolean;
  /**
   * SoftHSM2 2.6.1 (file object store): a C_FindObjects on one thread while another thread of
   * the same process creates a token object can put an earlier version of the new object's
   * attributes on disk (a generated key stored with CKA_TOKEN false, found by nobody again).
   * When true, lookups wait until no creation is in flight (object-writes.ts).
   */
  lookupsCorruptObjectsBeingWritten?: boolean;
  /**
   * Hashes the token accepts for CKM_RSA_PKCS_OAEP (SoftHSM2 2.6: only 'sha1'; SHA-256 gives
   * CKR_ARGUMENTS_BAD). Other hashes decrypt with CKM_RSA_X_509 in the token and OAEP
   * decoding outside it. Absent: the token does OAEP with every hash.
   */
  oaepHashesInToken?: Array<'sha1' | 'sha256'>;
  /**
   * The mechanism that implements AES key wrap with padding as RFC 5649 defines it. SoftHSM2
   * 2.6: CKM_AES_KEY_WRAP_PAD (the default). NSS softokn implements RFC 5649 as
   * CKM_AES_KEY_WRAP_KWP (PKCS#11 3.0) and gives CKM_AES_KEY_WRAP_PAD another meaning (RFC 3394
   * over PKCS#7-padded data), so it needs 'CKM_AES_KEY_WRAP_KWP'. Either way the wrapped bytes
   * are the same format.
   */
  rfc5649Mechanism?: 'CKM_AES_KEY_WRAP_PAD' | 'CKM_AES_KEY_WRAP_KWP';
  /**
   * Longest generic secret the token makes or unwraps (NSS softokn: 256 bytes). Data keys
   * longer than this answer UnsupportedOperationException. Absent: no limit below AWS's 1024.
   */
  maxSecretBytes?: number;
  /**
   * Further CKR codes the token returns when a ciphertext, signature or MAC fails its check
   * (NSS softokn: CKR_ARGUMENTS_BAD for a wrong HMAC and for some corrupted RSA-OAEP
   * ciphertexts, CKR_DEVICE_ERROR for some invalid RSA PKCS#1 v1.5 signatures). They become InvalidCiphertextException / a failed verification instead of
   * KMSInternalException.
   */
  integrityFailureCodes?: string[];
  /**
   * The token lets C_WrapKey and C_CopyObject take a key out although it is
   * CKA_EXTRACTABLE=false (NSS softokn 3.87 outside FIPS mode). Master keys are then only as
   * safe as the user PIN: p11kms warns at start-up; use such a token for development and CI only.
   */
  exportsNonExtractableKeys?: boolean;
  /** Key specs the token's mechanisms suggest but it cannot make, with the reason (probe results). */
  unsupportedKeySpecs?: Record<string, string>;
  /**
   * Key specs whose private keys C_WrapKey refuses (SoftHSM2 2.6: CKR_KEY_NOT_WRAPPABLE for
   * Ed25519), so the token cannot make data key pairs of them. Known up front, GenerateDataKeyPair
   * refuses before DryRun answers and before generating a pair it would throw away.
   */
  unwrappablePrivateKeySpecs?: string[];
}
