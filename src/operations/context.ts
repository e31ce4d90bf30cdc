import type { Logger } from 'pino';
import type { AccessControl } from '../access/authorize';
import type { Caller } from '../access/principal';
import type { Clock } from '../clock';
import type { KeyCustody } from '../custody/key-custody';
import type { KeyStoreConnections } from '../keystores/connections';
import type { UsageTracker } from '../lifecycle/usage-tracker';
import type { KeyQueue } from './shared/key-mutation';
import type { OperationName, OperationShapes } from '../model/generated/types';
import type { MetadataStore } from '../store/metadata-store';
import type { Scope } from '../store/records';
import type { WorkInFlight } from '../server/work-in-flight';
import type { AuditOutbox } from '../audit/outbox';

/** What one request carries into an operation, independent of the wire dialect. */
export interface RequestContext {
  /** Region and account the request addresses (the caller's own account). */
  scope: Scope;
  caller: Caller;
  requestId: string;
  /** The client's address as the wire layer saw it (aws:SourceIp). */
  sourceIp?: string;
  /** How the request arrived: TLS (aws:SecureTransport) and a verified client certificate. */
  transport?: Transport;
  /** GrantTokens of the request, if the operation takes them. */
  grantTokens?: readonly string[];
  /**
   * The dialect still offers RSAES_PKCS1_V1_5 import wrapping (the Huawei/OTC API lists it);
   * AWS KMS has refused it since 10 October 2023, so the AWS dialect leaves this unset.
   */
  offersPkcs1v15Wrapping?: boolean;
}

export interface Transport {
  secure: boolean;
  /** Subject of the client certificate verified by mutual TLS (condition key p11kms:TlsClientSubject). */
  clientCertificateSubject?: string;
}

/** The long-lived parts every operation may use. Built once per process, never global. */
export interface Services {
  store: MetadataStore;
  custody: KeyCustody;
  clock: Clock;
  log: Logger;
  /** Access control (strict: policies and grants decide; absent or permissive: same account only). */
  access?: AccessControl;
  /** Last-usage tracking (GetKeyLastUsage); absent in tests that do not need it. */
  usage?: UsageTracker;
  /** AWS's resource quota "Grants per KMS key" (setting grantsPerKey); absent: unlimited. */
  grantsPerKey?: number;
  /** Request quotas, consulted by every dialect before an operation runs; absent: unlimited. */
  quotas?: { admit(operation: OperationName, input: unknown, ctx: RequestContext, services: Services): Promise<void> };
  /** Custom key stores' connections (backend tokens, XKS proxies); absent in tests that do not need them. */
  keyStores?: KeyStoreConnections;
  /** Serialises this process's mutations of one key (shared/key-mutation.ts); absent: none. */
  keyQueue?: KeyQueue;
  /** Audit records committed with the changes they describe (audit/outbox.ts); absent in tests that call operations directly. */
  outbox?: AuditOutbox;
  /** Requests being worked on, for shutdown to wait for (server/work-in-flight.ts); absent in tests that call operations directly. */
  work?: WorkInFlight;
}

export type OperationHandler<Op extends OperationName> = (
  input: OperationShapes[Op]['input'],
  ctx: RequestContext,
  services: Services,
) => Promise<OperationShapes[Op]['output']>;
