import { randomUUID } from 'node:crypto';
import express, { type Request, type Response } from 'express';
import type { Logger } from 'pino';
import type { Credentials } from '../../access/credentials';
import type { Clock } from '../../clock';
import type { AuthMode, HuaweiProject } from '../../config/config';
import type { RequestContext, Services } from '../../operations';
import { ACTIONS, type Body } from './actions';
import { HuaweiAuthenticator } from './auth';
import { HuaweiError, huaweiErrorResponse, invalid } from './errors';

export interface HuaweiDeps {
  services: Services;
  log: Logger;
  auth: AuthMode;
  credentials: Credentials;
  /** Account of permissive-mode callers and of unlisted project ids. */
  accountId: string;
  projects: Record<string, HuaweiProject>;
  defaultRegion: string;
  maxBodyBytes: number;
  clock: Clock;
}

const PREFIX = '/v1.0/';
const ROUTE = /^\/v1\.0\/([^/]+)\/kms\/([a-z-]+)$/;
/** project_id as IAM issues them (32 hex characters), loosened to any short identifier. */
const PROJECT_ID = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * The Huawei Cloud / Open Telekom Cloud KMS dialect: `POST /v1.0/{project_id}/kms/<action>`
 * with a JSON body. One request flows: authenticate (X-Auth-Token or AK/SK) → project →
 * account and region → action (field mapping onto OPERATIONS, ./actions.ts) → JSON. Every
 * failure goes through ./errors.ts. Paths under /v1.0/ that name no built action answer 404
 * with APIGW.0101, as Huawei's API gateway does for APIs it does not publish.
 */
export function huaweiRouter(deps: HuaweiDeps): express.Router {
  const authenticator = new HuaweiAuthenticator(deps.auth, deps.credentials, deps.accountId, deps.clock);
  const router = express.Router();
  router.use(PREFIX, express.raw({ type: () => true, limit: deps.maxBodyBytes }), (req, res) => void handle(deps, authenticator, req, res));
  router.use(PREFIX, (err: unknown, _req: Request, res: Response, _next: (e?: unknown) => void) => {
    const e = err as { type?: string };
    const failure = e.type === 'entity.too.large' ? invalid('KMS.0203') : invalid('KMS.0202');
    send(res, requestIdOf(res), huaweiErrorResponse(failure, deps.log, { requestId: requestIdOf(res) }));
  });
  return router;
}

async function handle(deps: HuaweiDeps, authenticator: HuaweiAuthenticator, req: Request, res: Response): Promise<void> {
  const requestId = requestIdOf(res);
  let action: string | undefined;
  try {
    const url = req.originalUrl;
    const q = url.indexOf('?');
    const rawPath = q < 0 ? url : url.slice(0, q);
    const rawQuery = q < 0 ? '' : url.slice(q + 1);
    const route = ROUTE.exec(rawPath);
    const handler = route && req.method === 'POST' && Object.prototype.hasOwnProperty.call(ACTIONS, route[2]) ? ACTIONS[route[2]] : undefined;
    if (!route || !handler) {
      throw new HuaweiError('APIGW.0101', 'The API does not exist or has not been published in the environment.', 404);
    }
    action = route[2];
    const body: Buffer = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const caller = authenticator.authenticate({ method: req.method, rawPath, rawQuery, headers: req.headers, body });
    const projectId = route[1];
    if (!PROJECT_ID.test(projectId)) throw invalid('KMS.0201');
    const project = deps.projects[projectId] ?? { region: deps.defaultRegion, accountId: deps.accountId };
    if (project.accountId !== caller.accountId) {
      throw new HuaweiError('KMS.0305', 'Invalid X-Auth-Token Project Name.', 403);
    }
    const input = parseBody(body);
    const sequence = input.sequence;
    if (sequence !== undefined && (typeof sequence !== 'string' || sequence.length !== 36)) throw invalid('KMS.0206');
    const ctx: RequestContext = { scope: { region: project.region, accountId: project.accountId }, caller, requestId };
    const output = await handler(input, ctx, deps.services);
    // sequence: the request's serial number, echoed so callers can match replies (decrypt-data seed).
    if (sequence !== undefined) output.sequence = sequence;
    send(res, requestId, { status: 200, body: JSON.stringify(output) });
  } catch (err) {
    send(res, requestId, huaweiErrorResponse(err, deps.log, { requestId, action }));
  }
}

function parseBody(body: Buffer): Body {
  if (body.length === 0) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    throw invalid('KMS.0202');
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw invalid('KMS.0202');
  return parsed as Body;
}

function requestIdOf(res: Response): string {
  let id = res.getHeader('X-Request-Id') as string | undefined;
  if (!id) {
    id = randomUUID().replaceAll('-', '');
    res.setHeader('X-Request-Id', id);
  }
  return id;
}

function send(res: Response, requestId: string, reply: { status: number; body: string }): void {
  res.writeHead(reply.status, {
    'X-Request-Id': requestId,
    'Content-Type': 'application/json;charset=UTF-8',
    'Content-Length': Buffer.byteLength(reply.body),
  });
  res.end(reply.body);
}
