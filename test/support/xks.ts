import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type CustomKeyStoresListEntry, DescribeCustomKeyStoresCommand, type KMSClient } from '@aws-sdk/client-kms';
import { TestCa } from './test-ca';

/** The test CA's certificate and the proxy's server certificate (for localhost and 127.0.0.1). */
export interface TestPki {
  caFile: string;
  serverCertFile: string;
  serverKeyFile: string;
}

export function makeTestPki(dir: string): TestPki {
  const ca = new TestCa(dir, 'xks');
  const server = ca.server('xks-proxy');
  return { caFile: ca.cert, serverCertFile: server.cert, serverKeyFile: server.key };
}

const MAIN = path.resolve(__dirname, '..', '..', 'src', 'main.js');
export const XKS_CREDENTIAL = { accessKeyId: 'XKSTESTACCESSKEY2345', secretAccessKey: 'b2JqZWN0LXNlY3JldC1mb3ItdGhlLXhrcy10ZXN0cy0xMjM0NTY3OA==' };

/** Writes the XKS listener's settings file for a test server. */
export function writeXksSettings(dir: string, pki: TestPki, extra: Record<string, unknown> = {}): string {
  const file = path.join(dir, 'xks-proxy.json');
  fs.writeFileSync(file, JSON.stringify({ host: '127.0.0.1', port: 0, certFile: pki.serverCertFile, keyFile: pki.serverKeyFile, prefixes: [{ uriPathPrefix: '/tenant-a', credentials: [XKS_CREDENTIAL] }], ...extra }));
  return file;
}

export function createExternalKey(dataDir: string, id: string): string {
  return execFileSync(process.execPath, [MAIN, 'xks', 'create-key', '--id', id], { encoding: 'utf8', env: { ...process.env, P11KMS_DATA_DIR: dataDir, SOFTHSM2_CONF: '' } });
}


/** The store's DescribeCustomKeyStores entry once its connection attempt has ended (no longer CONNECTING). */
export async function settledStore(kms: KMSClient, id: string): Promise<CustomKeyStoresListEntry> {
  for (;;) {
    const entry = (await kms.send(new DescribeCustomKeyStoresCommand({ CustomKeyStoreId: id }))).CustomKeyStores![0];
    if (entry.ConnectionState !== 'CONNECTING') return entry;
    await new Promise((r) => setTimeout(r, 20));
  }
}
