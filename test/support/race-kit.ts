import { constants, createPublicKey, publicEncrypt } from 'node:crypto';
import { GetParametersForImportCommand, ImportKeyMaterialCommand, type KMSClient } from '@aws-sdk/client-kms';
import { custodyFindings, readStore } from './custody-invariants';
import { serverPerSuite, type TestServer } from './server';
import { TokenInspector } from './token-tool';

/** What a race test runs against: the real server, and its token seen through PKCS#11 from another process. */
export interface RaceRig {
  server: TestServer;
  inspector: TokenInspector;
}

/** Starts a rig before the enclosing describe block's tests and stops it after them. */
export function raceRig(): RaceRig {
  const rig = {} as RaceRig;
  // Registered first, so that it runs before the server stops, as the inspector was opened after it started.
  after(async () => rig.inspector?.close());
  serverPerSuite({}, (server) => {
    rig.server = server;
    rig.inspector = new TokenInspector(server.dataDir);
  });
  return rig;
}

type SdkError = Error & { $metadata?: { httpStatusCode?: number } };

/**
 * What several clients racing each other were told. A request either succeeds or fails with
 * one of the errors its caller declared acceptable for the race (e.g. ConflictException);
 * anything else, and every 5xx, is a finding.
 */
export class Outcomes {
  readonly findings: string[] = [];
  readonly counts = new Map<string, number>();

  async attempt<T>(what: string, request: Promise<T>, allowed: readonly string[] = []): Promise<T | undefined> {
    try {
      const value = await request;
      this.count(`${what} ok`);
      return value;
    } catch (err) {
      const e = err as SdkError;
      const status = e.$metadata?.httpStatusCode ?? 0;
      this.count(`${what} ${e.name}`);
      if (status >= 500 || !allowed.includes(e.name)) this.findings.push(`${what}: ${e.name} (HTTP ${status}): ${e.message}`);
      return undefined;
    }
  }

  ok(what: string): number {
    return this.counts.get(`${what} ok`) ?? 0;
  }

  private count(key: string): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }
}

/** Store on disk and token through PKCS#11 (another process): their disagreements, if any. */
export async function storeAndTokenFindings(server: TestServer, inspector: TokenInspector): Promise<string[]> {
  return custodyFindings(readStore(server.dataDir), await inspector.list());
}

/** Runs `count` copies of `client` at once. */
export function clients(count: number, client: (i: number) => Promise<void>): Promise<void[]> {
  return Promise.all(Array.from({ length: count }, (_, i) => client(i)));
}

/**
 * Import parameters fetched once (RSA_2048, RSAES_OAEP_SHA_1); the returned function imports
 * material with them (never expiring), wrapped with node:crypto as an AWS user would.
 */
export async function importer(kms: KMSClient, keyId: string): Promise<(material: Buffer, importType?: 'NEW_KEY_MATERIAL' | 'EXISTING_KEY_MATERIAL') => Promise<unknown>> {
  const params = await kms.send(new GetParametersForImportCommand({ KeyId: keyId, WrappingAlgorithm: 'RSAES_OAEP_SHA_1', WrappingKeySpec: 'RSA_2048' }));
  const key = createPublicKey({ key: Buffer.from(params.PublicKey!), format: 'der', type: 'spki' });
  return (material, importType) =>
    kms.send(
      new ImportKeyMaterialCommand({
        KeyId: keyId,
        ImportToken: params.ImportToken,
        EncryptedKeyMaterial: publicEncrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, material),
        ExpirationModel: 'KEY_MATERIAL_DOES_NOT_EXPIRE',
        ...(importType ? { ImportType: importType } : {}),
      }),
    );
}

/**
 * Asks `check` again (every 100 ms, at most `tries` times) until it answers nothing; returns
 * its last answer. For states a background task reaches (a sweep), never a timing assertion.
 */
export async function settled(check: () => Promise<string[]>, tries = 300): Promise<string[]> {
  let answer = await check();
  for (let i = 0; i < tries && answer.length > 0; i++) {
    await new Promise((r) => setTimeout(r, 100));
    answer = await check();
  }
  return answer;
}
