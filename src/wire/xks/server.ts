import * as fs from 'node:fs';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { withNoSniffing } from '../../server/no-sniffing';
import { xksApp, type XksDeps } from './router';

/**
 * The XKS proxy's own HTTPS listener: TLS 1.2 or later (the spec's AES-256-GCM and
 * ChaCha20 suites first), certificate and key from the settings file, and mutual TLS when
 * a client CA is configured (AWS KMS presents cks.kms.<region>.amazonaws.com).
 */
export async function startXksListener(deps: XksDeps): Promise<{ url: string; close(): Promise<void> }> {
  const settings = deps.settings.current();
  const server = https.createServer(
    {
      cert: fs.readFileSync(settings.certFile),
      key: fs.readFileSync(settings.keyFile),
      minVersion: 'TLSv1.2',
      ciphers: ['TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256', 'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-RSA-AES256-GCM-SHA384', 'TLS_AES_128_GCM_SHA256', 'ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-GCM-SHA256'].join(':'),
      honorCipherOrder: true,
      ...(settings.clientCaFile ? { ca: fs.readFileSync(settings.clientCaFile), requestCert: true, rejectUnauthorized: settings.requireClientCert !== false } : {}),
    },
    withNoSniffing(xksApp(deps)),
  );
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(settings.port, settings.host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const url = `https://${address.address.includes(':') ? `[${address.address}]` : address.address}:${address.port}`;
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
