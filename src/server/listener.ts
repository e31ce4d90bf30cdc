import * as fs from 'node:fs';
import type { Server } from 'node:http';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { type SecureContextOptions, createSecureContext } from 'node:tls';
import type { Logger } from 'pino';
import type { Config } from '../config/config';

/** TLS 1.2 suites with forward secrecy and AEAD only (TLS 1.3 suites are all modern). */
const TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

export interface Listener {
  server: Server;
  url: string;
  tls: boolean;
  /** Reads certificate, key and client CA again; new connections use them, open ones keep theirs. */
  reloadTls(): void;
}

type TlsSettings = Pick<Config, 'tlsCert' | 'tlsKey' | 'tlsClientCa'>;

/** Reads and checks the PEM files; throws naming the file and the problem, changing nothing. */
function secureOptions(config: TlsSettings): SecureContextOptions {
  const read = (what: string, file: string) => {
    try {
      return fs.readFileSync(file);
    } catch (err) {
      throw new Error(`${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  };
  const options: SecureContextOptions = {
    cert: read('TLS certificate', config.tlsCert!),
    key: read('TLS key', config.tlsKey!),
    ...(config.tlsClientCa ? { ca: read('TLS client CA', config.tlsClientCa) } : {}),
    minVersion: 'TLSv1.2',
    ciphers: TLS12_CIPHERS,
    honorCipherOrder: true,
  };
  try {
    createSecureContext(options); // a key that does not match the certificate fails here
  } catch (err) {
    throw new Error(`TLS material ${config.tlsCert} / ${config.tlsKey} refused: ${(err as Error).message}`);
  }
  return options;
}

/**
 * The HTTP or HTTPS listener. With tlsClientCa every client must present a certificate that CA
 * issued (the handshake fails otherwise); the verified subject is on `req.socket`.
 */
export async function listen(handler: Parameters<typeof createHttpServer>[1], config: Config, log: Logger): Promise<Listener> {
  const tls = config.tlsCert !== undefined;
  const server: Server = tls
    ? createHttpsServer({ ...secureOptions(config), requestCert: !!config.tlsClientCa, rejectUnauthorized: !!config.tlsClientCa }, handler)
    : createHttpServer(handler);
  if (!tls && !isLoopback(config.host)) {
    log.warn({ host: config.host }, 'listening on a non-loopback address without TLS: requests, data keys and plaintexts cross the network in clear; set P11KMS_TLS_CERT and P11KMS_TLS_KEY');
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.keepAliveTimeout = 65_000;
  const address = server.address() as AddressInfo;
  const host = address.address.includes(':') ? `[${address.address}]` : address.address;
  return {
    server,
    tls,
    url: `${tls ? 'https' : 'http'}://${host}:${address.port}`,
    reloadTls() {
      if (!tls) return;
      (server as HttpsServer).setSecureContext(secureOptions(config));
    },
  };
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

/** How a request's connection arrived, for condition keys and the audit record. */
export function transportOf(socket: unknown): { secure: boolean; clientCertificateSubject?: string } {
  const secure = (socket as { encrypted?: boolean }).encrypted === true;
  const subject = secure ? clientCertificateSubject(socket) : undefined;
  return subject ? { secure, clientCertificateSubject: subject } : { secure };
}

/** The subject of a verified client certificate (mutual TLS), as an RFC 2253-like string. */
export function clientCertificateSubject(socket: unknown): string | undefined {
  const tlsSocket = socket as { authorized?: boolean; getPeerCertificate?: () => { subject?: Record<string, string | string[]> } };
  if (!tlsSocket.authorized || typeof tlsSocket.getPeerCertificate !== 'function') return undefined;
  const subject = tlsSocket.getPeerCertificate().subject;
  if (!subject) return undefined;
  return Object.entries(subject)
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('+') : v}`)
    .join(',');
}
