import { createHash, createPublicKey } from 'node:crypto';
import * as pkcs11js from 'pkcs11js';
import { HELD_IN_TOKEN } from './key-templates';
import type { Session, Token } from './token';

/** Version N of the signing key pair is labelled p11kms-audit:signing:v<N>. */
export const AUDIT_SIGNING_LABEL_PREFIX = 'p11kms-audit:signing:v';
export const AUDIT_SIGNING_LABEL = `${AUDIT_SIGNING_LABEL_PREFIX}1`;
const labelOf = (version: number) => `${AUDIT_SIGNING_LABEL_PREFIX}${version}`;

/** id-ecPublicKey + prime256v1, then the BIT STRING header for a 65-byte uncompressed point. */
const P256_SPKI_PREFIX = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex');
const P256_PARAMS = Buffer.from('06082a8648ce3d030107', 'hex');
const P256_COORDINATE_BYTES = 32;

/**
 * Every token call of the audit signer runs on the token's duty session: never shed (refusing
 * a digest under load left the trail's tail unsigned past its bound exactly while it grew
 * fastest, each refused request being a record) and never queued behind clients (a digest holds
 * the trail's writes, so waiting there held every answer for the queue's standing time).
 */
const SERVICE_DUTY = { serviceDuty: true } as const;

/**
 * The audit trail's signing key: an EC P-256 pair generated inside the token at first start.
 * The private half is sensitive and never extractable, so a digest signature proves the
 * HSM was involved; only the public half leaves the token, as SubjectPublicKeyInfo.
 * The label does not match the master-key pattern, so start-up reconciliation leaves it alone.
 *
 * The key rotates: `rotate()` makes version N+1 and destroys the private half of version N
 * (its public half stays in the token, and its PEM beside the trail, for verifying old
 * digests). The current version is the newest whose private key exists.
 */
export class AuditSigner {
  private constructor(
    private readonly token: Token,
    private current: { version: number; publicKeyPem: string },
    /** Every version's public half, oldest first, as the token holds it. */
    private readonly all: string[],
  ) {}

  /** The public halves of every version (the trust list for verifying this trail). */
  get publicKeyPems(): readonly string[] {
    return this.all;
  }

  get version(): number {
    return this.current.version;
  }

  get publicKeyPem(): string {
    return this.current.publicKeyPem;
  }

  static async open(token: Token): Promise<AuditSigner> {
    const opened = await token.run('open audit signing key', async (session) => {
      let newest = 0;
      while (token.lookup.findObject(session, labelOf(newest + 1), pkcs11js.CKO_PUBLIC_KEY)) newest++;
      const version = Math.max(newest, 1);
      const existing = findPair(token, session, labelOf(version));
      // Every lookup before the pair is generated: a lookup that must search runs the operation again from its start.
      const earlier: Buffer[] = [];
      for (let v = 1; v < version; v++) earlier.push(readEcPoint(token, session, token.lookup.findObject(session, labelOf(v), pkcs11js.CKO_PUBLIC_KEY)!));
      const point = existing ? readEcPoint(token, session, existing.publicKey) : await generatePair(token, session, labelOf(version));
      return { version, point, earlier };
    }, SERVICE_DUTY);
    const pem = pemOf(opened.point);
    return new AuditSigner(token, { version: opened.version, publicKeyPem: pem }, [...opened.earlier.map(pemOf), pem]);
  }

  /**
   * Follows a rotation another process on the same token made: if a newer version exists,
   * it becomes current (before a digest is built, so the digest names the key that signs it).
   */
  async refresh(): Promise<boolean> {
    const newer = await this.token.run('look for a newer audit signing key', (session) => {
      const found: Array<{ version: number; point: Buffer }> = [];
      for (let v = this.current.version + 1; ; v++) {
        const pub = this.token.lookup.findObject(session, labelOf(v), pkcs11js.CKO_PUBLIC_KEY);
        if (!pub) break;
        found.push({ version: v, point: readEcPoint(this.token, session, pub) });
      }
      return found;
    }, SERVICE_DUTY);
    if (newer.length === 0) return false;
    for (const n of newer) this.all.push(pemOf(n.point));
    const last = newer[newer.length - 1];
    this.current = { version: last.version, publicKeyPem: pemOf(last.point) };
    return true;
  }

  /** Makes the next version current; the previous private key is destroyed. */
  async rotate(): Promise<void> {
    // Never reuse a version another process already made (generating it would replace that pair).
    await this.refresh();
    const previous = this.current.version;
    const version = previous + 1;
    const point = await this.token.run('rotate audit signing key', async (session) => {
      // Looked up first: a lookup that must search runs the operation again from its start.
      const old = this.token.lookup.findObject(session, labelOf(previous), pkcs11js.CKO_PRIVATE_KEY);
      const made = await generatePair(this.token, session, labelOf(version));
      if (old) this.token.pkcs11.C_DestroyObject(session, old);
      this.token.lookup.forgetObject(labelOf(previous), pkcs11js.CKO_PRIVATE_KEY);
      return made;
    }, SERVICE_DUTY);
    this.current = { version, publicKeyPem: pemOf(point) };
    this.all.push(this.current.publicKeyPem);
  }

  /** ECDSA P-256 over SHA-256 of `data`, DER-encoded as node:crypto and OpenSSL expect. */
  async sign(data: Buffer): Promise<Buffer> {
    const label = labelOf(this.current.version);
    const digest = createHash('sha256').update(data).digest();
    const raw = await this.token.run('sign audit digest', async (session) => {
      const key = this.token.lookup.findObject(session, label, pkcs11js.CKO_PRIVATE_KEY);
      if (!key) throw new Error(`audit signing key ${label} is missing from the token`);
      this.token.pkcs11.C_SignInit(session, { mechanism: pkcs11js.CKM_ECDSA }, key);
      return this.token.pkcs11.C_SignAsync(session, digest, Buffer.alloc(2 * P256_COORDINATE_BYTES));
    }, SERVICE_DUTY);
    return rawEcdsaToDer(raw);
  }
}

function pemOf(point: Buffer): string {
  const spki = Buffer.concat([P256_SPKI_PREFIX, point]);
  return createPublicKey({ key: spki, format: 'der', type: 'spki' }).export({ format: 'pem', type: 'spki' }) as string;
}

/** Generates the pair `label` in the token (after removing a half-created one) and returns its EC point. */
async function generatePair(token: Token, session: Session, label: string): Promise<Buffer> {
  // A half-created pair (one object without the other) is useless: start over.
  for (const handle of await token.lookup.search(session, [{ type: pkcs11js.CKA_LABEL, value: label }])) {
    token.pkcs11.C_DestroyObject(session, handle);
  }
  token.lookup.forgetObject(label, pkcs11js.CKO_PUBLIC_KEY);
  token.lookup.forgetObject(label, pkcs11js.CKO_PRIVATE_KEY);
  const id = Buffer.from(label);
  const pair = await token.creatingOnLoop(() => token.pkcs11.C_GenerateKeyPair(
    session,
    { mechanism: pkcs11js.CKM_EC_KEY_PAIR_GEN },
    [
      { type: pkcs11js.CKA_TOKEN, value: true },
      { type: pkcs11js.CKA_PRIVATE, value: false },
      { type: pkcs11js.CKA_VERIFY, value: true },
      { type: pkcs11js.CKA_EC_PARAMS, value: P256_PARAMS },
      { type: pkcs11js.CKA_LABEL, value: label },
      { type: pkcs11js.CKA_ID, value: id },
    ],
    [
      ...HELD_IN_TOKEN,
      { type: pkcs11js.CKA_SIGN, value: true },
      { type: pkcs11js.CKA_DERIVE, value: false },
      { type: pkcs11js.CKA_DECRYPT, value: false },
      { type: pkcs11js.CKA_LABEL, value: label },
      { type: pkcs11js.CKA_ID, value: id },
    ],
  ));
  return readEcPoint(token, session, pair.publicKey);
}

function findPair(token: Token, session: Session, label: string): { publicKey: Buffer; privateKey: Buffer } | undefined {
  const publicKey = token.lookup.findObject(session, label, pkcs11js.CKO_PUBLIC_KEY);
  const privateKey = token.lookup.findObject(session, label, pkcs11js.CKO_PRIVATE_KEY);
  if (!publicKey || !privateKey) {
    token.lookup.forgetObject(label, pkcs11js.CKO_PUBLIC_KEY);
    token.lookup.forgetObject(label, pkcs11js.CKO_PRIVATE_KEY);
    return undefined;
  }
  return { publicKey, privateKey };
}

/** CKA_EC_POINT arrives DER-wrapped in an OCTET STRING; SPKI wants the bare point. */
function readEcPoint(token: Token, session: Session, publicKey: Buffer): Buffer {
  const [attr] = token.pkcs11.C_GetAttributeValue(session, publicKey, [{ type: pkcs11js.CKA_EC_POINT }]);
  const value = attr.value as Buffer;
  const point = value[0] === 0x04 && value.length === 2 + 2 * P256_COORDINATE_BYTES + 1 && value[1] === 0x41 ? value.subarray(2) : value;
  if (point.length !== 1 + 2 * P256_COORDINATE_BYTES || point[0] !== 0x04) {
    throw new Error('audit signing key: unexpected CKA_EC_POINT encoding');
  }
  return Buffer.from(point);
}

function rawEcdsaToDer(raw: Buffer): Buffer {
  const integer = (bytes: Buffer): Buffer => {
    let i = 0;
    while (i < bytes.length - 1 && bytes[i] === 0) i++;
    let v = bytes.subarray(i);
    if (v[0] & 0x80) v = Buffer.concat([Buffer.from([0]), v]);
    return Buffer.concat([Buffer.from([0x02, v.length]), v]);
  };
  const r = integer(raw.subarray(0, P256_COORDINATE_BYTES));
  const s = integer(raw.subarray(P256_COORDINATE_BYTES, 2 * P256_COORDINATE_BYTES));
  return Buffer.concat([Buffer.from([0x30, r.length + s.length]), r, s]);
}
