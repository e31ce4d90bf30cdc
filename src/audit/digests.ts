import type { Logger } from 'pino';
import type { Clock } from '../clock';
import { isoSeconds } from './event';
import { publishPublicKey, writeDurably } from './files';
import { type DigestBody, digestFileName, type FileCoverage, fingerprintOf, SIGNATURE_ALGORITHM, sha256Hex, signedBytesOf } from './format';

/** Signs digests with a key the trail never sees (held in the token). */
export interface DigestSigner {
  readonly publicKeyPem: string;
  /** Version of the signing key, named in each digest. */
  readonly version: number;
  sign(data: Buffer): Promise<Buffer>;
  /** Makes a new key version current. */
  rotate(): Promise<void>;
  /** Picks up a newer version another process made; true when the version changed. */
  refresh(): Promise<boolean>;
}

/** What the writer tracks about a file so a digest can describe it. */
export interface FileState extends Omit<FileCoverage, 'sha256'> {
  sha256: string;
}

export type ChainHead = DigestBody['chainHead'];

export interface DigestRef {
  name: string;
  sha256: string;
  sequence: number;
}

/** What is known at startup of the files and of the digests already signed. */
export interface SignedState {
  /** Latest state of every file, and what the latest digest said about it. */
  files: Map<string, FileState>;
  covered: Map<string, string>;
  lastDigest: DigestRef | undefined;
  /** When the current signing key version started signing (service clock). */
  keySince: number | undefined;
}

/** See TrailSettings (settings.ts). */
interface TailBound {
  unsignedMaxSeconds: number;
  unsignedMaxRecords: number;
}

export function coverageKey(f: FileState): string {
  return `${f.bytes}:${f.closed}`;
}

/**
 * Queues a digest of the unsigned tail; false (and nothing queued) when the trail takes no
 * more records. `failed` is told when that digest cannot be signed.
 */
export type RequestTailDigest = (reason: string, insideFlushLoop: boolean, failed: (err: Error) => void) => boolean;

/** Records written since the last digest, and the timer that signs them before the time bound. */
/** How soon a tail digest that could not be signed (token busy or failing) is tried again. */
const RETRY_MS = 5_000;

export class UnsignedTail {
  private records = 0;
  private timer: NodeJS.Timeout | undefined;
  private requested = false;

  constructor(
    private readonly bound: TailBound,
    private readonly requestDigest: RequestTailDigest,
    private readonly log: Logger,
  ) {}

  /** Keeps the unsigned tail within its bounds: a digest once enough records are unsigned, or before the oldest is too old. */
  note(records: number): void {
    this.records += records;
    if (this.records >= this.bound.unsignedMaxRecords) {
      this.request('tail:records', true);
    } else if (!this.timer) {
      // Signed at four fifths of the bound, so that signing and writing finish inside it.
      this.timer = setTimeout(() => this.request('tail:time', false), Math.floor(this.bound.unsignedMaxSeconds * 800));
      this.timer.unref();
    }
  }

  private request(reason: string, insideFlushLoop: boolean): void {
    if (this.requested) return;
    // Set before asking: from the timer, asking runs the flush loop's synchronous part at
    // once, and an append there comes back here; it must not queue a second digest.
    this.requested = true;
    const failed = (err: Error) => {
      this.requested = false;
      this.log.error({ err: err.message, reason }, 'audit digest for the unsigned tail failed');
      // Tried again soon: the timer that failed is spent, and without a new one (a new record
      // arms none while it is set) the tail stayed unsigned past its bound until the next rotation.
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.request('tail:retry', false), Math.min(RETRY_MS, Math.floor(this.bound.unsignedMaxSeconds * 800)));
      this.timer.unref();
    };
    if (!this.requestDigest(reason, insideFlushLoop, failed)) this.requested = false;
  }

  /** After a digest: nothing written so far is unsigned. */
  signed(): void {
    this.records = 0;
    this.requested = false;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  stop(): void {
    clearTimeout(this.timer);
  }
}

/**
 * Signs digests: each names every file that changed since the previous digest, the chain
 * head and the digest before it, and is signed by the token's key.
 */
export class Digests {
  constructor(
    private readonly settings: TailBound & { dir: string },
    private readonly signer: DigestSigner,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly tail: UnsignedTail,
    /** The file being written and the newest record that reached it (the chain head a digest may vouch for). */
    private readonly current: () => { file: FileState; head: ChainHead },
    private readonly state: SignedState,
  ) {}

  private get fingerprint(): string {
    return fingerprintOf(this.signer.publicKeyPem);
  }

  /** The latest state of a file that is no longer written (rotation), for the next digest. */
  track(file: FileState): void {
    this.state.files.set(file.name, file);
  }

  async write(reason: string): Promise<void> {
    // Several processes share the token's signing key: one may have rotated it.
    if (await this.signer.refresh()) {
      publishPublicKey(this.settings.dir, this.signer, this.log);
      this.state.keySince = this.clock.now();
    }
    const { file, head } = this.current();
    this.state.files.set(file.name, file);
    const changed = [...this.state.files.values()].filter((f) => this.state.covered.get(f.name) !== coverageKey(f));
    const sequence = (this.state.lastDigest?.sequence ?? 0) + 1;
    const now = this.clock.now();
    const body: DigestBody = {
      digestVersion: 1,
      signingKeyVersion: this.signer.version,
      unsignedTailBound: { maxSeconds: this.settings.unsignedMaxSeconds, maxRecords: this.settings.unsignedMaxRecords },
      digestSequence: sequence,
      digestTime: isoSeconds(now),
      reason,
      previousDigestFile: this.state.lastDigest?.name ?? null,
      previousDigestSha256: this.state.lastDigest?.sha256 ?? null,
      signatureAlgorithm: SIGNATURE_ALGORITHM,
      publicKeyFingerprint: this.fingerprint,
      chainHead: { ...head },
      files: changed.map((f) => ({ ...f })),
    };
    const signature = await this.signer.sign(signedBytesOf(body));
    const raw = Buffer.from(`${JSON.stringify({ digest: body, signature: signature.toString('base64') })}\n`, 'utf8');
    const name = digestFileName(sequence, now);
    await writeDurably(this.settings.dir, name, raw);
    this.state.lastDigest = { name, sha256: sha256Hex(raw), sequence };
    for (const f of changed) this.state.covered.set(f.name, coverageKey(f));
    this.state.keySince ??= now;
    this.tail.signed();
  }

  /** A new key version signs from now on; its public key is published and a digest made with it at once. */
  async switchKey(): Promise<void> {
    const previous = this.signer.version;
    await this.signer.rotate();
    publishPublicKey(this.settings.dir, this.signer, this.log);
    this.state.keySince = this.clock.now();
    this.log.info({ previous, version: this.signer.version, fingerprint: this.fingerprint }, 'audit signing key rotated');
    await this.write('signing-key-rotated');
  }

  /** Whether the current key version has signed for `days` days (0: it never falls due, only a request rotates it). */
  keyDue(days: number): boolean {
    return days > 0 && this.state.keySince !== undefined && this.clock.now() - this.state.keySince >= days * 86_400_000;
  }
}
