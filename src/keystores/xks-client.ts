import * as https from 'node:https';
import * as tls from 'node:tls';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import type { Logger } from 'pino';
import type { ConnectionErrorCodeType } from '../model/generated/types';
import type { CustomKeyStoreRecord } from '../store/records';
import { integrityValue, XKS_SERVICE } from '../wire/xks/spec';
import type { XksConnector } from './connections';

/** What KMS tells the proxy about the call it makes on a caller's behalf (spec: requestMetadata). */
export interface XksRequestMetadata {
  awsPrincipalArn: string;
  kmsOperation: string;
  kmsRequestId: string;
  kmsKeyArn?: string;
}

/** Why a proxy call failed: no answer in time, no connection, a TLS failure, a bad answer, or the spec's error. */
export type XksFailure =
  | { kind: 'timeout' | 'unreachable' | 'tls' | 'invalid-response' }
  | { kind: 'error'; status: number; errorName: string };

export class XksCallError extends Error {
  constructor(readonly failure: XksFailure) {
    super(failure.kind === 'error' ? `XKS proxy answered ${failure.status} ${failure.errorName}` : `XKS proxy call failed: ${failure.kind}`);
  }
}

export interface XksClientOptions {
  /** Port of every proxy call (AWS: always 443). */
  port: number;
  /** Deadline of one call, connection and TLS included (AWS: 250 ms). */
  timeoutMs: number;
  /** Extra trusted CA certificates (PEM), beside the system's roots. */
  extraCa?: string;
  log: Logger;
}

/**
 * KMS's side of the XKS Proxy API: every call signed with SigV4 for service kms-xks-proxy
 * with the store's credential and the store's Region, over HTTPS that must verify against
 * the system roots (plus the configured extra CA bundle), within the deadline.
 */
export class XksClient implements XksConnector {
  private readonly agent: https.Agent;

  constructor(private readonly options: XksClientOptions) {
    this.agent = new https.Agent({
      keepAlive: true,
      minVersion: 'TLSv1.2',
      ...(options.extraCa ? { ca: [...tls.rootCertificates, options.extraCa] } : {}),
    });
  }

  async healthCheck(store: CustomKeyStoreRecord, secret: string, requestId: string, operation: string): Promise<{ ok: true } | { ok: false; code: ConnectionErrorCodeType; failure?: XksFailure }> {
    try {
      const answer = await this.call(store, secret, '/health', { requestMetadata: { kmsRequestId: requestId, kmsOperation: operation } });
      const fleet = answer.ekmFleetDetails;
      if (!Array.isArray(fleet) || fleet.length === 0) return { ok: false, code: 'XKS_PROXY_INVALID_RESPONSE', failure: { kind: 'invalid-response' } };
      // A proxy whose every key manager is unavailable cannot serve the store.
      if (fleet.every((e) => (e as { healthStatus?: string }).healthStatus === 'UNAVAILABLE')) return { ok: false, code: 'XKS_PROXY_NOT_REACHABLE' };
      return { ok: true };
    } catch (err) {
      if (!(err instanceof XksCallError)) throw err;
      return { ok: false, code: connectionErrorOf(err.failure), failure: err.failure };
    }
  }

  async keyMetadata(store: CustomKeyStoreRecord, secret: string, keyId: string, metadata: XksRequestMetadata): Promise<{ keySpec?: unknown; keyUsage?: unknown; keyStatus?: unknown }> {
    return this.call(store, secret, `/keys/${keyId}/metadata`, { requestMetadata: metadata });
  }

  async encrypt(store: CustomKeyStoreRecord, secret: string, keyId: string, metadata: XksRequestMetadata, plaintext: Buffer, aad: Buffer): Promise<{ ciphertext: Buffer; iv: Buffer; tag: Buffer; ciphertextMetadata: Buffer }> {
    const answer = await this.call(store, secret, `/keys/${keyId}/encrypt`, {
      requestMetadata: metadata,
      plaintext: plaintext.toString('base64'),
      encryptionAlgorithm: 'AES_GCM',
      additionalAuthenticatedData: aad.toString('base64'),
      // As AWS: the proxy proves what it returns (SHA-256 over AAD, metadata, IV, ciphertext and
      // tag) before the inner blob, perhaps a new data key's only sealed copy, is given out.
      ciphertextDataIntegrityValueAlgorithm: 'SHA_256',
    });
    const ciphertext = base64Of(answer.ciphertext);
    const iv = base64Of(answer.initializationVector);
    const tag = base64Of(answer.authenticationTag);
    const ciphertextMetadata = answer.ciphertextMetadata === undefined ? Buffer.alloc(0) : base64Of(answer.ciphertextMetadata);
    if (ciphertext.length !== plaintext.length || (iv.length !== 12 && iv.length !== 16) || tag.length !== 16 || ciphertextMetadata.length > 20) {
      throw new XksCallError({ kind: 'invalid-response' });
    }
    if (answer.ciphertextDataIntegrityValue !== integrityValue({ aad, ciphertextMetadata, iv, ciphertext, tag })) throw new XksCallError({ kind: 'invalid-response' });
    return { ciphertext, iv, tag, ciphertextMetadata };
  }

  async decrypt(store: CustomKeyStoreRecord, secret: string, keyId: string, metadata: XksRequestMetadata, parts: { ciphertext: Buffer; iv: Buffer; tag: Buffer; ciphertextMetadata: Buffer }, aad: Buffer): Promise<Buffer> {
    const answer = await this.call(store, secret, `/keys/${keyId}/decrypt`, {
      requestMetadata: metadata,
      encryptionAlgorithm: 'AES_GCM',
      ciphertext: parts.ciphertext.toString('base64'),
      initializationVector: parts.iv.toString('base64'),
      authenticationTag: parts.tag.toString('base64'),
      additionalAuthenticatedData: aad.toString('base64'),
      ...(parts.ciphertextMetadata.length > 0 ? { ciphertextMetadata: parts.ciphertextMetadata.toString('base64') } : {}),
    });
    const plaintext = base64Of(answer.plaintext);
    if (plaintext.length !== parts.ciphertext.length) throw new XksCallError({ kind: 'invalid-response' });
    return plaintext;
  }

  close(): void {
    this.agent.destroy();
  }

  private async call(store: CustomKeyStoreRecord, secret: string, apiPath: string, body: Record<string, unknown>): Promise<Record<string, unknown>> {
    const xks = store.xks!;
    const host = new URL(xks.uriEndpoint).hostname;
    const path = `${xks.uriPath}${apiPath}`;
    const payload = JSON.stringify(body);
    const signer = new SignatureV4({
      credentials: { accessKeyId: xks.accessKeyId, secretAccessKey: secret },
      region: store.region,
      service: XKS_SERVICE,
      sha256: Hash.bind(null, 'sha256'),
    });
    const authority = this.options.port === 443 ? host : `${host}:${this.options.port}`;
    const signed = await signer.sign({ method: 'POST', protocol: 'https:', hostname: host, port: this.options.port, path, headers: { host: authority, 'content-type': 'application/json' }, body: payload });
    const started = process.hrtime.bigint();
    return new Promise((resolve, reject) => {
      let settled = false;
      const fail = (failure: XksFailure) => {
        if (settled) return;
        settled = true;
        this.options.log.warn({ customKeyStoreId: store.customKeyStoreId, path, failure, ms: Number(process.hrtime.bigint() - started) / 1e6 }, 'XKS proxy call failed');
        reject(new XksCallError(failure));
      };
      const req = https.request({ method: 'POST', host, port: this.options.port, path, headers: signed.headers, agent: this.agent, servername: host }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('error', () => fail({ kind: 'unreachable' }));
        res.on('end', () => {
          clearTimeout(timer);
          let json: Record<string, unknown>;
          try {
            json = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
            if (!json || typeof json !== 'object' || Array.isArray(json)) throw new Error('not an object');
          } catch {
            return fail({ kind: 'invalid-response' });
          }
          if (res.statusCode !== 200) {
            return typeof json.errorName === 'string' ? fail({ kind: 'error', status: res.statusCode ?? 0, errorName: json.errorName }) : fail({ kind: 'invalid-response' });
          }
          settled = true;
          resolve(json);
        });
      });
      // The whole call (connection, TLS, request, answer) has one deadline, as on AWS.
      const timer = setTimeout(() => {
        fail({ kind: 'timeout' });
        req.destroy();
      }, this.options.timeoutMs);
      req.on('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        fail({ kind: isTlsFailure(err) ? 'tls' : 'unreachable' });
      });
      req.end(payload);
    });
  }
}

function base64Of(value: unknown): Buffer {
  if (typeof value !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) throw new XksCallError({ kind: 'invalid-response' });
  return Buffer.from(value, 'base64');
}

function isTlsFailure(err: NodeJS.ErrnoException): boolean {
  const code = err.code ?? '';
  return /CERT|SSL|TLS|SELF_SIGNED|HOSTNAME|ERR_OSSL/.test(code) || /certificate|handshake/i.test(err.message);
}

/** AWS's ConnectionErrorCode for a failed health check (spec's error table). */
export function connectionErrorOf(failure: XksFailure): ConnectionErrorCodeType {
  switch (failure.kind) {
    case 'timeout':
      return 'XKS_PROXY_TIMED_OUT';
    case 'unreachable':
      return 'XKS_PROXY_NOT_REACHABLE';
    case 'tls':
      return 'XKS_PROXY_INVALID_TLS_CONFIGURATION';
    case 'invalid-response':
      return 'XKS_PROXY_INVALID_RESPONSE';
    default: {
      const byName: Record<string, ConnectionErrorCodeType> = {
        AuthenticationFailedException: 'INVALID_CREDENTIALS',
        AccessDeniedException: 'XKS_PROXY_ACCESS_DENIED',
        InvalidUriPathException: 'XKS_PROXY_INVALID_CONFIGURATION',
        ThrottlingException: 'XKS_PROXY_NOT_REACHABLE',
        DependencyTimeoutException: 'XKS_PROXY_NOT_REACHABLE',
      };
      return byName[failure.errorName] ?? 'XKS_PROXY_INVALID_RESPONSE';
    }
  }
}
