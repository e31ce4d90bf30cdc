import * as pkcs11js from 'pkcs11js';
import type { KeySpec, MessageType, SigningAlgorithmSpec } from '../model/generated/types';
import { EC_FIELD_BYTES, HMAC_MAC_BYTES, HMAC_MECHANISM } from './key-templates';
import { type MaterialRef, requiredObject } from './material-objects';
import { ckrName } from './pkcs11-errors';
import { ecdsaDerToRaw, ecdsaRawToDer, signaturePlan } from './signing';
import type { Token } from './token';

/** Signatures of asymmetric keys and MACs of HMAC keys, made and checked in the token. */
export class SignVerify {
  constructor(private readonly token: Token) {}

  /** Checks algorithm, key spec and digest length the way sign/verify would (for DryRun). */
  checkSignatureRequest(spec: KeySpec, algorithm: SigningAlgorithmSpec, messageType: MessageType, message: Buffer): void {
    signaturePlan(spec, algorithm, messageType, message);
  }

  async sign(ref: MaterialRef, spec: KeySpec, algorithm: SigningAlgorithmSpec, messageType: MessageType, message: Buffer): Promise<Buffer> {
    const plan = signaturePlan(spec, algorithm, messageType, message);
    return this.token.run('sign', async (session) => {
      const key = requiredObject(this.token, session, ref, pkcs11js.CKO_PRIVATE_KEY);
      this.token.pkcs11.C_SignInit(session, plan.mechanism, key);
      const signature = await this.token.pkcs11.C_SignAsync(session, plan.input, Buffer.alloc(1024));
      return plan.ecdsa ? ecdsaRawToDer(signature) : signature;
    });
  }

  /** Verifies inside the token; false for any signature that does not verify or parse. */
  async verify(ref: MaterialRef, spec: KeySpec, algorithm: SigningAlgorithmSpec, messageType: MessageType, message: Buffer, signature: Buffer): Promise<boolean> {
    const plan = signaturePlan(spec, algorithm, messageType, message);
    let tokenSignature: Buffer | undefined = signature;
    if (plan.ecdsa) tokenSignature = ecdsaDerToRaw(signature, EC_FIELD_BYTES[spec]);
    if (!tokenSignature) return false;
    const toVerify = tokenSignature;
    return this.token.run('verify', async (session) => {
      const key = requiredObject(this.token, session, ref, pkcs11js.CKO_PUBLIC_KEY);
      this.token.pkcs11.C_VerifyInit(session, plan.mechanism, key);
      return this.verdict(this.token.pkcs11.C_VerifyAsync(session, plan.input, toVerify));
    });
  }

  /** HMAC in the token. */
  async mac(ref: MaterialRef, spec: KeySpec, message: Buffer): Promise<Buffer> {
    return this.token.run('generate MAC', async (session) => {
      const key = requiredObject(this.token, session, ref, pkcs11js.CKO_SECRET_KEY);
      this.token.pkcs11.C_SignInit(session, { mechanism: HMAC_MECHANISM[spec] }, key);
      return this.token.pkcs11.C_SignAsync(session, message, Buffer.alloc(64));
    });
  }

  async verifyMac(ref: MaterialRef, spec: KeySpec, message: Buffer, mac: Buffer): Promise<boolean> {
    // A MAC of another length never verifies, and must not reach the token: NSS softokn 3.87
    // compares as many bytes as the hash gives, reading past a shorter MAC, and answered CKR_OK
    // for a truncated one whenever the byte after it in memory happened to match.
    if (mac.length !== HMAC_MAC_BYTES[spec]) return false;
    return this.token.run('verify MAC', async (session) => {
      const key = requiredObject(this.token, session, ref, pkcs11js.CKO_SECRET_KEY);
      this.token.pkcs11.C_VerifyInit(session, { mechanism: HMAC_MECHANISM[spec] }, key);
      return this.verdict(this.token.pkcs11.C_VerifyAsync(session, message, mac));
    });
  }

  private async verdict(verification: Promise<boolean>): Promise<boolean> {
    try {
      return await verification;
    } catch (err) {
      const name = ckrName(err);
      if (name === 'CKR_SIGNATURE_INVALID' || name === 'CKR_SIGNATURE_LEN_RANGE' || isIntegrityFailure(this.token, name)) return false;
      throw err;
    }
  }
}

/** C_Verify's answer: a bad signature is a `false`, anything else a failure. */
export function isIntegrityFailure(token: Token, ckr: string | undefined): boolean {
  return ckr !== undefined && (token.profile.quirks.integrityFailureCodes?.includes(ckr) ?? false);
}
