import type express from 'express';
import { AUDIT_API_PREFIX, type AuditApiDeps, auditApiRouter } from './audit-api';
import { AuditReader } from './audit-reader';
import { CONSOLE_PREFIX, consoleAssetsRouter } from './assets';

/**
 * The web console (docs/console.md): its static page under /console/ and the read-only audit
 * endpoint it reads. Mounted after the API routes, so it adds nothing to an API request's path.
 * Returns the audit reader, whose thread the service closes when it stops.
 */
export function mountConsole(app: express.Express, deps: Omit<AuditApiDeps, 'reader'>): AuditReader {
  const reader = new AuditReader();
  app.use(CONSOLE_PREFIX, consoleAssetsRouter());
  app.use(AUDIT_API_PREFIX, auditApiRouter({ ...deps, reader }));
  return reader;
}
