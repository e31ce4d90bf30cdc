import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { Credentials } from './access/credentials';
import { AuditOutbox } from './audit/outbox';
import { AuditTrail } from './audit/trail';
import { systemClock } from './clock';
import { type Config, isSharedStoreUrl, loadBackendProfile, loadHsmProfile } from './config/config';
import { AuditSigner } from './custody/audit-signer';
import { KeyCustody } from './custody/key-custody';
import { SHAPES } from './model/generated/shapes';
import type { KeySpec } from './model/generated/types';
import { Token } from './custody/token';
import { Pkcs11Modules } from './custody/token-module';
import { SecretSealer } from './custody/secret-sealer';
import { TokenBackends } from './custody/token-backends';
import { KeyStoreConnections } from './keystores/connections';
import { XksClient } from './keystores/xks-client';
import { DeletionSweeper } from './lifecycle/deletion-sweeper';
import { BACKGROUND_TASK, watchLeadership } from './lifecycle/leadership';
import { MaterialSweeper } from './lifecycle/material-sweeper';
import { seedFromFile } from './lifecycle/seed';
import { UsageTracker } from './lifecycle/usage-tracker';
import { backendTokenScope, periodicReconcileOptions, reconcile, type ReconcileReport, startupReconcileOptions } from './lifecycle/reconcile';
import type { Services } from './operations';
import { openStore } from './store/open-store';
import { KeyQueue } from './operations/shared/key-mutation';
import { awsJsonEndpoint } from './wire/aws-json/router';
import { HeaderSignatures, SigV4Authenticator } from './wire/aws-json/sigv4-auth';
import type { ExpressRoutes, ExpressRoutesDeps } from './server/express-routes';
import { type Listener, listen } from './server/listener';
import { ServiceMetrics } from './server/metrics';
import { RequestQuotas } from './server/quotas';
import { ExternalKeys } from './custody/external-keys';
import { recordTokenUser } from './custody/token-users';
import { XksSettingsFile } from './wire/xks/settings';
import { WorkInFlight } from './server/work-in-flight';
import { warmUp } from './server/warm-up';
import { validatorWarmUps } from './wire/aws-json/validate';

export interface RunningService {
  url: string;
  /** The XKS proxy listener, when configured (xksProxyFile). */
  xksUrl?: string;
  services: Services;
  reconciled: ReconcileReport;
  audit: AuditTrail;
  /**
   * SIGHUP: reads the credentials file and the TLS files again and swaps them in together; if
   * any is broken nothing changes and the error names it.
   */
  reload(): void;
  /**
   * SIGTERM: stop accepting, let in-flight requests finish (at most drainSeconds), flush last
   * usage, sign a final audit digest, close the store and the token.
   */
  close(): Promise<void>;
}

/**
 * Composition root: builds every long-lived part once, wires them together and starts
 * listening. Nothing here is global; tests and the CLI each get their own instance.
 */
export async function startService(config: Config, log: Logger): Promise<RunningService> {
  sizeThreadPool(config);
  const profile = loadHsmProfile(config);
  // The token's threads boot on another core while the store is read; they wait for the token.
  const threadsAhead = Token.bootThreads(profile, config.dataDir);
  // The store comes first: the JSON store's directory lock stops a second process on the
  // same data directory before it touches the token. A PostgreSQL store is shared.
  const metrics = new ServiceMetrics();
  const opened = metrics.timedStore(
    await openStore({
      storeUrl: config.storeUrl,
      dataDir: config.dataDir,
      log,
      journalFromBytes: config.storeJournalFromBytes,
      callTimeoutMs: config.storeCallTimeoutSeconds * 1000,
      idleCheck: { afterIdleMs: config.storeIdleCheckAfterMs, timeoutMs: config.storeIdleCheckTimeoutMs },
    }).catch((err: unknown) => {
      threadsAhead.close();
      throw err;
    }),
  );
  const clock = systemClock(config.clockOffsetSeconds);
  // Every changing transaction carries its audit record (docs/audit.md, "Crash behaviour").
  const outbox = new AuditOutbox(opened, clock, log, config.auditDir!);
  const store = outbox.wrap(opened);
  const shared = isSharedStoreUrl(config.storeUrl);
  let token: Token | undefined;
  let audit: AuditTrail | undefined;
  let keyStores: KeyStoreConnections | undefined;
  let endTokenUse: (() => void) | undefined;
  try {
    const modules = new Pkcs11Modules();
    // With the store's lock held nothing else writes to the embedded token: object files a crash
    // left unfinished can go before it is loaded (a shared store: other processes may be writing).
    const tokenOptions = { observer: metrics.tokenObserver, callTimeoutMs: config.tokenCallTimeoutSeconds * 1000, exclusive: store.singleWriter, threadsAhead };
    // Before the token is opened: maintenance of its files waits for the token lock, then sees us.
    endTokenUse = recordTokenUser(config.dataDir);
    await store.processLiveness?.hold(outbox.owner);
    const openedToken = await Token.openShared(profile, config.dataDir, log, tokenOptions, (t) => AuditSigner.open(t), modules);
    threadsAhead.close();
    token = openedToken.token;
    const services: Services = { store, custody: new KeyCustody(token), clock, log, keyQueue: new KeyQueue(), work: new WorkInFlight(), outbox };
    const leaseMs = config.intentLeaseSeconds * 1000;

    // The trail opens before anything that must be recorded can happen (sweeps, requests).
    // Processes sharing a store each keep their own chain, named after host and process.
    const auditSigner = openedToken.extra;
    const identity = shared ? `${os.hostname()}.${process.pid}` : undefined;
    audit = await AuditTrail.open(
      {
        dir: identity ? path.join(config.auditDir!, identity) : config.auditDir!,
        maxFileBytes: config.auditMaxFileBytes,
        rotationSeconds: config.auditRotationSeconds,
        fsync: config.auditFsync,
        syncsInFlight: config.auditSyncsInFlight,
        onFsync: metrics.observeFsync,
        ...(identity ? { identity } : {}),
        unsignedMaxSeconds: config.auditUnsignedMaxSeconds,
        unsignedMaxRecords: config.auditUnsignedMaxRecords,
        signingKeyRotationDays: config.auditSigningKeyRotationDays,
      },
      auditSigner,
      services.clock,
      log,
    );
    const trail = audit;
    // Records of changes committed by processes that ended before writing them, before anything else is.
    await outbox.deliver(trail);
    outbox.start(trail, config.sweepIntervalSeconds * 1000);
    const openToken = token;
    metrics.watchPool(openToken);
    metrics.watchKeys(store);
    metrics.watchChangeFeed(opened);
    metrics.watchStoreConnections(opened);
    metrics.watchBackgroundLocks(opened, BACKGROUND_TASK);
    metrics.watchAudit(() => trail.state());
    const countedTrail = metrics.countingAudit(trail);

    const backendProfiles = Object.fromEntries(Object.entries(config.tokenBackends).map(([id, file]) => [id, loadBackendProfile(file)]));
    keyStores = new KeyStoreConnections(store, new SecretSealer(token), new TokenBackends(backendProfiles, config.dataDir, modules, log), log);
    services.keyStores = keyStores;
    const xksClient = new XksClient({ port: config.xksProxyPort, timeoutMs: config.xksProxyTimeoutMs, extraCa: config.xksTrustedCaFile ? fs.readFileSync(config.xksTrustedCaFile, 'utf8') : undefined, log });
    keyStores.xks = xksClient;
    // A backend token is reconciled when it becomes reachable. Requests are being served by
    // then (and, in a cluster, by other processes), so intents within their lease are alive.
    const backendMissing = new Map<string, string[]>();
    const backendDuplicates = new Map<string, string[]>();
    keyStores.onBackendOpened = async (customKeyStoreId, custody) => {
      const report = await reconcile(services, periodicReconcileOptions(services, leaseMs), backendTokenScope(services, customKeyStoreId, custody));
      backendMissing.set(customKeyStoreId, report.missingMaterial.map((m) => `${m.keyId}:v${m.version}`));
      backendDuplicates.set(customKeyStoreId, report.duplicateMaterial);
    };

    // The embedded SoftHSM2 token (under the data directory) holds nothing but p11kms's objects.
    const reconciled = await reconcile(services, startupReconcileOptions(services, leaseMs, profile.softhsm2ConfTemplate !== undefined, config.unknownTokenObjects === 'destroy'));
    const sweeper = new DeletionSweeper(services, config.sweepIntervalSeconds * 1000, trail);
    await sweeper.sweep();
    sweeper.start();
    // Rotations and import expiries that fell due while the service was down happen now.
    const materialSweeper = new MaterialSweeper(services, config.sweepIntervalSeconds * 1000, trail, leaseMs);
    await materialSweeper.sweepAfterReconciliation();
    materialSweeper.start();
    // Another process's background work is taken over within seconds of its death.
    const stopWatching = shared
      ? watchLeadership(store, 2_000, log, async () => {
          await sweeper.sweepAfresh();
          await materialSweeper.sweepAfresh();
        })
      : () => undefined;
    services.usage = new UsageTracker(store, services.clock, log, Math.min(5_000, config.sweepIntervalSeconds * 1000));
    services.usage.start();
    const usage = services.usage;
    if (config.seedFile) await seedFromFile(services, config.seedFile, config.accountId);
    await keyStores.resume();

    const credentials = config.credentialsFile ? Credentials.load(config.credentialsFile) : Credentials.empty();
    services.access = { enforce: config.auth === 'strict', directory: credentials.directory() };
    if (config.requestQuotas !== 'off') services.quotas = new RequestQuotas(config.requestQuotas);
    services.grantsPerKey = config.grantsPerKey;
    const authenticator = new SigV4Authenticator(config.auth, credentials, config.accountId, services.clock);

    const keySpecs = keySpecSupport(services.custody);
    log.info({ keySpecs }, 'key specs this token supports');
    let draining = false;
    const awsJsonDeps = { services, authenticator, log, maxBodyBytes: config.maxBodyBytes, audit: countedTrail };
    const awsJson = awsJsonEndpoint(awsJsonDeps);
    const routes = expressRoutesOnDemand({
      readiness: { token: openToken, store, audit: trail, auditDir: config.auditDir!, draining: () => draining },
      metrics,
      health: () => ({
        hsm: profile.name,
        // Stores on one token report the same material: each counts once.
        missingMaterial: reconciled.missingMaterial.length + new Set([...backendMissing.values()].flat()).size,
        // Key material no record names, kept (docs/key-custody.md): as found at start-up.
        unknownTokenObjects: reconciled.unknownKept.length,
        // Material several token objects claim (decryption tries each): as found at start-up and at connection.
        duplicateKeyMaterial: reconciled.duplicateMaterial.length + new Set([...backendDuplicates.values()].flat()).size,
        keySpecs,
        // A store shared by several processes: whether this one runs the cluster's background work now.
        ...(opened.backgroundLocksState ? { backgroundLeader: opened.backgroundLocksState().held.includes(BACKGROUND_TASK) } : {}),
      }),
      awsJson,
      awsJsonDeps,
      huawei: { services, log, auth: config.auth, credentials, accountId: config.accountId, projects: config.huaweiProjects, defaultRegion: config.huaweiDefaultRegion, maxBodyBytes: config.maxBodyBytes, clock: services.clock, audit: countedTrail },
      console: { auditDir: config.auditDir!, trustedKeys: () => auditSigner.publicKeyPems, defaultAccountId: config.accountId },
    }, log);

    const xks = config.xksProxyFile
      ? await (await import('./wire/xks/server')).startXksListener({ settings: new XksSettingsFile(config.xksProxyFile), keys: new ExternalKeys(token), audit: trail, clock: services.clock, log, maxBodyBytes: config.maxBodyBytes, signatures: new HeaderSignatures(), work: services.work })
      : undefined;
    if (xks) log.info({ url: xks.url }, 'XKS proxy listening');

    const listener: Listener = await listen(requestListener(awsJson, routes.handle), config, log);
    metrics.timeRequests(listener.server);
    const inFlight = countInFlight(listener);
    const url = listener.url;
    log.info({ url, auth: config.auth, tls: listener.tls, mutualTls: !!config.tlsClientCa, quotas: config.requestQuotas, dataDir: config.dataDir, hsm: profile.name }, 'p11kms listening');
    const warming = warmUp([...(store.warmUps?.() ?? []), ...validatorWarmUps()], listener.server, log);

    const openKeyStores = keyStores;
    return {
      url,
      ...(xks ? { xksUrl: xks.url } : {}),
      services,
      reconciled,
      audit: trail,
      reload() {
        // Everything is read and checked before anything is swapped.
        const nextCredentials = config.credentialsFile ? Credentials.load(config.credentialsFile) : undefined;
        listener.reloadTls();
        if (nextCredentials) {
          credentials.adopt(nextCredentials);
          services.access = { enforce: config.auth === 'strict', directory: credentials.directory() };
        }
      },
      async close() {
        draining = true;
        warming.stop();
        const drainEnds = Date.now() + config.drainSeconds * 1000;
        await drain(listener, inFlight, config.drainSeconds * 1000, log);
        await xks?.close();
        // Requests whose clients hung up are still at work in the token, the store and the trail.
        if (!(await services.work!.settled(drainEnds - Date.now()))) {
          log.warn({ inFlight: services.work!.size }, 'drain time is over: closing with requests still at work');
        }
        stopWatching();
        await sweeper.stop();
        await materialSweeper.stop();
        await usage.stop();
        await openKeyStores.close();
        await outbox.close();
        await routes.close();
        xksClient.close();
        await trail.close();
        await store.close();
        openToken.close();
        endTokenUse?.();
      },
    };
  } catch (err) {
    threadsAhead.close();
    await outbox.close();
    await audit?.close().catch(() => undefined);
    await keyStores?.close().catch(() => undefined);
    token?.close();
    endTokenUse?.();
    await store.close();
    throw err;
  }
}

/**
 * Token calls (pkcs11js *Async) and the audit trail's fdatasyncs share libuv's pool, 4 threads
 * by default: with 8 sessions busy and a flush running, requests queued for a thread while the
 * main thread sat idle. The pool is sized for every session plus the trail's flushes. libuv
 * reads the variable when the pool first starts, which is after this in a fresh process; an
 * operator's own UV_THREADPOOL_SIZE wins.
 */
export function sizeThreadPool(config: Config): void {
  if (process.env.UV_THREADPOOL_SIZE) return;
  let sessions: number;
  try {
    sessions = loadHsmProfile(config).sessionPoolSize;
  } catch {
    return; // Reported where the profile is loaded for real.
  }
  process.env.UV_THREADPOOL_SIZE = String(Math.max(4, sessions + config.auditSyncsInFlight));
}

/** What this deployment's token can create, from its mechanism list (probed at start-up). */
function keySpecSupport(custody: KeyCustody): { supported: string[]; unsupported: Record<string, string> } {
  const supported: string[] = [];
  const unsupported: Record<string, string> = {};
  for (const spec of (SHAPES.KeySpec.enum ?? []) as KeySpec[]) {
    const answer = custody.canGenerate(spec);
    if (answer.ok) supported.push(spec);
    else unsupported[spec] = `the token lacks ${answer.missing}`;
  }
  return { supported, unsupported };
}

/**
 * Every AWS JSON request is `POST /`: it goes straight to its handler, the rest through Express
 * (whose router costs as much per request as the handler's own work at these rates).
 */
function requestListener(awsJson: RequestHandler, everythingElse: RequestHandler): RequestHandler {
  return (req, res) => {
    if (req.method === 'POST' && req.url === '/') awsJson(req, res);
    else everythingElse(req, res);
  };
}

type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * The Express routes (server/express-routes.ts), loaded and built on the first request that is
 * not `POST /`: Express 5 loads every body parser, qs and mime-db when required, ~100 ms of a
 * 700-ms start-up with 10,000 keys, and an AWS client never needs them. That first request
 * (a load balancer's /health, say) waits for them once.
 */
function expressRoutesOnDemand(deps: ExpressRoutesDeps, log: Logger): { handle: RequestHandler; close(): Promise<void> } {
  let built: Promise<ExpressRoutes> | undefined;
  const routes = () => (built ??= import('./server/express-routes').then((m) => m.expressRoutes(deps)));
  return {
    handle(req, res) {
      routes().then(
        (r) => r.handle(req, res),
        (err: Error) => {
          log.error({ err: err.message }, 'the routes other than POST / could not be built');
          res.statusCode = 500;
          res.end();
        },
      );
    },
    async close() {
      if (built) await (await built).close();
    },
  };
}

/** Requests received and not yet answered. */
function countInFlight(listener: Listener): () => number {
  let count = 0;
  listener.server.on('request', (_req, res) => {
    count++;
    res.once('close', () => count--);
  });
  return () => count;
}

/**
 * Stops accepting connections, answers what is in flight (each response closes its
 * connection), and after `limitMs` cuts whatever is left.
 */
async function drain(listener: Listener, inFlight: () => number, limitMs: number, log: Logger): Promise<void> {
  const { server } = listener;
  server.on('request', (_req, res) => res.setHeader('Connection', 'close'));
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  log.info({ inFlight: inFlight() }, 'draining: no new connections, waiting for in-flight requests');
  let timer: NodeJS.Timeout | undefined;
  const poll = setInterval(() => server.closeIdleConnections(), 100);
  const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), limitMs)));
  const cut = await Promise.race([closed.then(() => false), timedOut]);
  clearInterval(poll);
  clearTimeout(timer);
  if (cut) {
    log.warn({ inFlight: inFlight(), limitMs }, 'drain time is over: closing the remaining connections');
    server.closeAllConnections();
    await closed;
  }
}
