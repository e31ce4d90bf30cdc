import * as fs from 'node:fs/promises';
import express from 'express';
import type { MetadataStore } from '../store/metadata-store';
import type { ServiceMetrics } from './metrics';

export interface ReadinessParts {
  token: { loggedIn(): boolean };
  store: MetadataStore;
  /** recover(): after a write failure, tries to write again (a no-op otherwise). */
  audit: { state(): { failure: string | undefined }; recover(): Promise<void> };
  auditDir: string;
  /** Set once SIGTERM started the drain. */
  draining(): boolean;
}

/** A key id no key has: reading it proves the store answers without touching any key. */
const PROBE_KEY_ID = '00000000-0000-0000-0000-000000000000';

/** The store answers reads, and takes writes (a store may refuse them all: see writesRefused). */
async function storeState(store: MetadataStore): Promise<string> {
  try {
    await store.getKey({ keyId: PROBE_KEY_ID, region: 'us-east-1' });
    return (await store.writesRefused?.()) ?? 'ok';
  } catch (err) {
    return `store does not answer: ${(err as Error).message}`;
  }
}

/** Each part's state; `ok` or a short reason, never key data. */
export async function readiness(parts: ReadinessParts): Promise<Record<string, string>> {
  const checks: Record<string, string> = {};
  checks.token = parts.token.loggedIn() ? 'ok' : 'not logged in to the token';
  checks.store = await storeState(parts.store);
  // The probe tries too: a load balancer that stops sending requests to a node not ready
  // would otherwise leave its trail refusing after the disk has space again.
  await parts.audit.recover().catch(() => undefined);
  const failure = parts.audit.state().failure;
  checks.audit = failure
    ? failure
    : await fs.access(parts.auditDir, fs.constants.W_OK).then(
        () => 'ok',
        (err: unknown) => `audit directory not writable (${(err as NodeJS.ErrnoException).code})`,
      );
  if (parts.draining()) checks.service = 'draining: shutting down';
  return checks;
}

/**
 * /health (live: the process answers), /ready (every part works: 200, else 503 naming the
 * failing parts) and /metrics (Prometheus text). Unauthenticated, as load balancers and
 * scrapers expect; none of them reveals key ids, principals or key data.
 */
export function operationalRoutes(parts: ReadinessParts, metrics: ServiceMetrics, health: () => Record<string, unknown>): express.Router {
  const router = express.Router();
  router.get('/health', (_req, res) => {
    res.json({ status: 'ok', ...health() });
  });
  router.get('/ready', (_req, res, next) => {
    readiness(parts).then((checks) => {
      const failing = Object.keys(checks).filter((k) => checks[k] !== 'ok');
      res.status(failing.length === 0 ? 200 : 503).json({ status: failing.length === 0 ? 'ready' : 'not ready', failing, checks });
    }, next);
  });
  router.get('/metrics', (_req, res, next) => {
    metrics.render().then(({ contentType, body }) => {
      res.setHeader('Content-Type', contentType);
      res.end(body);
    }, next);
  });
  return router;
}
