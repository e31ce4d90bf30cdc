/** How the audit trail writes (config: P11KMS_AUDIT_*; docs/audit.md). */
export type FsyncPolicy = 'always' | 'batch' | 'none';

export interface TrailSettings {
  dir: string;
  /** A file reaching this size is closed and a new one started. */
  maxFileBytes: number;
  /** A file older than this is closed (when it holds at least one record). */
  rotationSeconds: number;
  /**
   * always: a record is on disk (fdatasync) before its response is sent; concurrent requests
   *   share one fdatasync.
   * batch: written to the OS before the response, fdatasync at most BATCH_FSYNC_MS later;
   *   survives a process crash, may lose the last second to a power failure.
   * none: written to the OS before the response; fdatasync only at rotation, digest and close.
   */
  fsync: FsyncPolicy;
  /**
   * fsync 'always': batches whose fdatasync may be running at once (default 1). With more, a
   * disk that completes concurrent flushes together serves several group commits per flush
   * time; but every batch is smaller, and each has its own write and fdatasync. On the test
   * VM's disk 1 gave the most requests per second at the least CPU (docs/audit.md, Durability).
   */
  syncsInFlight?: number;
  /** Told how long each fdatasync of the trail took (metrics). */
  onFsync?: (seconds: number) => void;
  /**
   * Host and process writing this chain, when several processes share a deployment (each
   * keeps its own chain in its own directory); recorded in every record as p11kmsProcess.
   */
  identity?: string;
  /**
   * The unsigned tail's bound: records chained but not yet covered by a signed digest. A
   * digest is signed before the oldest such record is `unsignedMaxSeconds` old or there are
   * `unsignedMaxRecords` of them; every digest states the bound, and `audit verify` reports a
   * longer tail as an error.
   */
  unsignedMaxSeconds: number;
  unsignedMaxRecords: number;
  /** The signing key rotates when its version is this many days old (0: only on request). */
  signingKeyRotationDays: number;
}
