import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface Issued {
  cert: string;
  key: string;
}

/**
 * A certificate authority made at test time with the openssl CLI (EC P-256 keys, so it is
 * quick): server certificates for 127.0.0.1 and client certificates for mutual TLS.
 */
export class TestCa {
  readonly cert: string;
  private serial = 1;

  constructor(readonly dir: string, readonly name: string) {
    fs.mkdirSync(dir, { recursive: true });
    this.cert = path.join(dir, `${name}-ca.pem`);
    const key = path.join(dir, `${name}-ca.key`);
    openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', this.cert, '-days', '2', '-subj', `/CN=p11kms test CA ${name}`);
  }

  /** A server certificate for 127.0.0.1 and localhost. */
  server(name: string): Issued {
    return this.issue(name, `/CN=${name}`, 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth');
  }

  /** A client certificate for mutual TLS with the given subject CN and O. */
  client(name: string, organisation: string): Issued {
    return this.issue(name, `/O=${organisation}/CN=${name}`, 'extendedKeyUsage=clientAuth');
  }

  private issue(name: string, subject: string, extensions: string): Issued {
    const key = path.join(this.dir, `${name}.key`);
    const csr = path.join(this.dir, `${name}.csr`);
    const cert = path.join(this.dir, `${name}.pem`);
    const ext = path.join(this.dir, `${name}.ext`);
    fs.writeFileSync(ext, `${extensions}\n`);
    openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', csr, '-subj', subject);
    openssl('x509', '-req', '-in', csr, '-CA', this.cert, '-CAkey', path.join(this.dir, `${this.name}-ca.key`), '-set_serial', String(this.serial++ * 1000 + name.length), '-days', '2', '-extfile', ext, '-out', cert);
    return { cert, key };
  }
}

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}
