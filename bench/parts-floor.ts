/**
 * The parts floor: the service's Encrypt request answered by the four things every Encrypt
 * must do here, built from p11kms's own parts, and nothing else: Node HTTP reads the request,
 * the strict SigV4 check verifies it (SigV4Authenticator), one AES-GCM encrypt runs on the
 * token as the service runs it (KeyCustody under the HSM profile, the key's session copy), and
 * one audit record goes through the trail at the configured durability (AuditTrail, fdatasync
 * before the answer by default, signed by the token's audit key) before a JSON answer of the
 * service's shape is sent. No Express, routing, validation, key lookup, policy, grants, store,
 * usage tracking or metrics: what the service costs above this row is theirs.
 *
 * The HTTP floor bounds any Node front end; this row bounds any design that keeps these parts.
 *
 * Run as a child: `node parts-floor.js <processes> <data dir> <key id> <credentials file>`
 * on the bench's data directory while the service is stopped; each serving process prints
 * `listening on <url>` and keeps its own trail under `<data dir>/../parts-floor-audit/<pid>`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import * as path from 'node:path';
import pino from 'pino';
import { Credentials } from '../src/access/credentials';
import { sizeThreadPool } from '../src/app';
import { apiCallEvent } from '../src/audit/event';
import { AuditTrail } from '../src/audit/trail';
import { systemClock } from '../src/clock';
import { loadConfig, loadHsmProfile } from '../src/config/config';
import { AuditSigner } from '../src/custody/audit-signer';
import { KeyCustody } from '../src/custody/key-custody';
import { Token } from '../src/custody/token';
import { additionalData, encodeHeader, PayloadKind } from '../src/operations/shared/ciphertext';
import { SigV4Authenticator } from '../src/wire/aws-json/sigv4-auth';
import { listenLikeTheService, serveOnProcesses } from './http-floor';
import { materialOf } from './raw-child';
import { listeningEndpoint } from './service';

export async function startPartsFloor(processes: number, dataDir: string, keyId: string, credentialsFile: string): Promise<{ child: ChildProcess; endpoint: string }> {
  const child = spawn(process.execPath, [__filename, String(processes), dataDir, keyId, credentialsFile], { stdio: ['ignore', 'pipe', 'inherit'] });
  return { child, endpoint: await listeningEndpoint(child, processes, 'the parts floor') };
}

async function serveParts(dataDir: string, keyId: string, credentialsFile: string): Promise<void> {
  const config = loadConfig({ env: { P11KMS_DATA_DIR: dataDir } });
  sizeThreadPool(config);
  const log = pino({ level: 'warn' });
  const clock = systemClock();
  const profile = loadHsmProfile(config);
  // Under the token lock, as the service's processes open it (SoftHSM2 races logins otherwise).
  const { token, extra: signer } = await Token.openShared(profile, dataDir, log, { callTimeoutMs: config.tokenCallTimeoutSeconds * 1000 }, (t) => AuditSigner.open(t));
  const custody = new KeyCustody(token);
  const material = materialOf(dataDir, keyId);
  const trail = await AuditTrail.open(
    {
      dir: path.join(dataDir, '..', 'parts-floor-audit', String(process.pid)),
      maxFileBytes: config.auditMaxFileBytes,
      rotationSeconds: config.auditRotationSeconds,
      fsync: config.auditFsync,
      syncsInFlight: config.auditSyncsInFlight,
      unsignedMaxSeconds: config.auditUnsignedMaxSeconds,
      unsignedMaxRecords: config.auditUnsignedMaxRecords,
      signingKeyRotationDays: config.auditSigningKeyRotationDays,
    },
    signer,
    clock,
    log,
  );
  const auth = new SigV4Authenticator('strict', Credentials.load(credentialsFile), config.accountId, clock);
  const header = encodeHeader({ kind: PayloadKind.Plaintext, keyId, materialVersion: material.version, secretLength: 0 });
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const time = clock.now();
      const requestId = randomUUID();
      (async () => {
        const { caller, region } = await auth.authenticate({ method: 'POST', host: req.headers.host ?? '', path: '/', query: {}, headers: req.headers as Record<string, string>, body });
        const input = JSON.parse(body.toString('utf8')) as { KeyId: string; Plaintext: string; EncryptionContext: Record<string, string> };
        const plaintext = Buffer.from(input.Plaintext, 'base64');
        const { iv, sealed } = await custody.symmetric.encrypt(material, additionalData(header, input.EncryptionContext), plaintext);
        plaintext.fill(0);
        const arn = `arn:aws:kms:${region}:${caller.accountId}:key/${keyId}`;
        const output = { KeyId: arn, EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' };
        const request = { KeyId: input.KeyId, EncryptionContext: input.EncryptionContext };
        await trail.record(apiCallEvent({ dialect: 'aws-json', time, requestId, operation: 'Encrypt', caller, region, sourceIp: req.socket.remoteAddress, userAgent: req.headers['user-agent'], input: request, inputDecoded: true, output }));
        const answer = JSON.stringify({ CiphertextBlob: Buffer.concat([header, iv, sealed]).toString('base64'), ...output });
        res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': requestId, 'content-length': Buffer.byteLength(answer) });
        res.end(answer);
      })().catch((err: unknown) => {
        res.writeHead(500).end(err instanceof Error ? err.message : String(err));
      });
    });
  });
  listenLikeTheService(server);
  process.on('SIGTERM', () => {
    server.close();
    void trail.close().finally(() => {
      token.close();
      process.exit(0);
    });
  });
}

if (require.main === module) {
  const [processes, dataDir, keyId, credentialsFile] = process.argv.slice(2);
  serveOnProcesses(Number(processes), () => serveParts(dataDir, keyId, credentialsFile));
}
