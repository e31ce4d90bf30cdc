import * as fs from 'node:fs';
import * as path from 'node:path';
import { readJsonFile } from '../../config/json-file';

export interface XksCredential {
  accessKeyId: string;
  secretAccessKey: string;
}

export interface XksPrefix {
  /** '' or '/<prefix>' before /kms/xks/v1 (the store's XksProxyUriPath minus /kms/xks/v1). */
  uriPathPrefix: string;
  /** Several at once, for rotation: add the new one, UpdateCustomKeyStore, then drop the old. */
  credentials: XksCredential[];
  /** External keys this prefix may use; absent: every external key of the token. */
  keyIds?: string[];
}

export interface XksProxySettings {
  host: string;
  port: number;
  /** PEM server certificate (chain) and private key. */
  certFile: string;
  keyFile: string;
  /** Mutual TLS: CA bundle that client certificates must chain to. */
  clientCaFile?: string;
  /** With clientCaFile: refuse connections without a valid client certificate (default true). */
  requireClientCert?: boolean;
  /** Regions accepted in the SigV4 scope; absent: any. */
  regions?: string[];
  prefixes: XksPrefix[];
}

/**
 * The XKS listener's settings file (docs/xks.md). Credentials and prefixes are read again
 * whenever the file changes, so a credential can be rotated without a restart; address,
 * port and TLS files are read at start-up.
 */
export class XksSettingsFile {
  private cached: { mtimeMs: number; settings: XksProxySettings };

  constructor(private readonly file: string) {
    this.cached = this.read();
  }

  current(): XksProxySettings {
    try {
      const mtimeMs = fs.statSync(this.file).mtimeMs;
      if (mtimeMs !== this.cached.mtimeMs) this.cached = this.read();
    } catch {
      // A file being replaced or briefly unreadable: keep serving with the last good settings.
    }
    return this.cached.settings;
  }

  private read(): { mtimeMs: number; settings: XksProxySettings } {
    const mtimeMs = fs.statSync(this.file).mtimeMs;
    const raw = readJsonFile(this.file) as Partial<XksProxySettings>;
    const dir = path.dirname(path.resolve(this.file));
    const where = (f: string | undefined) => (f === undefined ? undefined : path.resolve(dir, f));
    if (typeof raw.certFile !== 'string' || typeof raw.keyFile !== 'string') throw new Error(`${this.file}: certFile and keyFile are required (the XKS API is HTTPS only)`);
    if (!Array.isArray(raw.prefixes) || raw.prefixes.length === 0) throw new Error(`${this.file}: prefixes must list at least one uriPathPrefix with credentials`);
    for (const p of raw.prefixes) {
      if (typeof p.uriPathPrefix !== 'string' || !/^(\/[A-Za-z0-9_-]+)*$/.test(p.uriPathPrefix)) throw new Error(`${this.file}: uriPathPrefix '${String(p.uriPathPrefix)}' must be '' or /segments of [A-Za-z0-9_-]`);
      if (!Array.isArray(p.credentials) || p.credentials.length === 0) throw new Error(`${this.file}: prefix '${p.uriPathPrefix}' needs credentials`);
      for (const c of p.credentials) {
        // The formats AWS accepts for XksProxyAuthenticationCredential.
        if (!/^[A-Z2-7]{20,30}$/.test(c.accessKeyId) || !/^[a-zA-Z0-9/+=]{43,64}$/.test(c.secretAccessKey)) {
          throw new Error(`${this.file}: prefix '${p.uriPathPrefix}': accessKeyId must be 20-30 of [A-Z2-7] and secretAccessKey 43-64 of [A-Za-z0-9/+=]`);
        }
      }
    }
    return {
      mtimeMs,
      settings: {
        host: raw.host ?? '127.0.0.1',
        port: raw.port ?? 8443,
        certFile: where(raw.certFile)!,
        keyFile: where(raw.keyFile)!,
        clientCaFile: where(raw.clientCaFile),
        requireClientCert: raw.requireClientCert ?? true,
        regions: raw.regions,
        prefixes: raw.prefixes,
      },
    };
  }
}
