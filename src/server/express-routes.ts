import type { IncomingMessage, ServerResponse } from 'node:http';
import express from 'express';
import { mountConsole } from '../console';
import type { AuditApiDeps } from '../console/audit-api';
import { type AwsJsonDeps, unroutedRequest } from '../wire/aws-json/router';
import { type HuaweiDeps, huaweiRouter } from '../wire/huawei/router';
import { operationalRoutes, type ReadinessParts } from './health';
import type { ServiceMetrics } from './metrics';
import { withNoSniffing } from './no-sniffing';

export interface ExpressRoutesDeps {
  readiness: ReadinessParts;
  metrics: ServiceMetrics;
  health: () => Record<string, unknown>;
  awsJson: (req: IncomingMessage, res: ServerResponse) => void;
  awsJsonDeps: AwsJsonDeps;
  huawei: HuaweiDeps;
  console: Omit<AuditApiDeps, 'reader' | 'services' | 'authenticator' | 'audit' | 'log'>;
}

export interface ExpressRoutes {
  handle(req: IncomingMessage, res: ServerResponse): void;
  /** Ends the console's audit reader thread. */
  close(): Promise<void>;
}

/**
 * Every request but the AWS JSON API's `POST /`: /health, /ready, /metrics, presigned AWS
 * requests (POST / with a query string), the Huawei dialect, the console and its audit API,
 * and the answer to anything unrouted. Express routes them; app.ts builds this on the first
 * such request (express-routes-on-demand), so the service listens without loading Express.
 */
export function expressRoutes(deps: ExpressRoutesDeps): ExpressRoutes {
  const { services, authenticator, audit, log } = deps.awsJsonDeps;
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');
  app.use(operationalRoutes(deps.readiness, deps.metrics, deps.health));
  app.post('/', deps.awsJson);
  app.use(huaweiRouter(deps.huawei));
  const auditReader = mountConsole(app, { ...deps.console, services, authenticator, audit, log });
  app.use(unroutedRequest(deps.awsJsonDeps));
  const handle = withNoSniffing(app);
  return { handle, close: () => auditReader.close() };
}
