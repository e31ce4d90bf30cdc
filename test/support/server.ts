import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as https from 'node:https';
import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { activeToken } from './test-tokens';

const MAIN = path.resolve(__dirname, '..', '..', 'src', 'main.js');

/**
 * The ready-made administrator identity policy of the README (every KMS action on every
 * resource): in strict mode, users, roles and sessions need an identity policy for anything
 * their key policies do not grant them directly.
 */
export const ADMINISTRATOR_POLICY = { Version: '2012-10-17', Statement: [{ Sid: 'KmsAdministrator', Effect: 'Allow', Action: 'kms:*', Resource: '*' }] };

/** identityPolicies giving each principal the administrator policy. */
export function administrators(...principalArns: string[]): Record<string, typeof ADMINISTRATOR_POLICY> {
  return Object.fromEntries(principalArns.map((arn) => [arn, ADMINISTRATOR_POLICY]));
}

export interface ServerOptions {
  /** Reuse a data directory (restart tests); a fresh temporary one otherwise. */
  dataDir?: string;
  auth?: 'strict' | 'permissive';
  credentialsFile?: string;
  accountId?: string;
  clockOffsetSeconds?: number;
  sweepIntervalSeconds?: number;
  env?: Record<string, string>;
}

/** A real p11kms process on a real SoftHSM2 token, listening on a free loopback port. */
export class TestServer {
  private constructor(
    readonly endpoint: string,
    readonly dataDir: string,
    readonly options: ServerOptions,
    private child: ChildProcess,
    readonly stderr: () => string,
    /** The XKS proxy listener's URL, when the server has one (P11KMS_XKS_PROXY_FILE). */
    readonly xksEndpoint?: string,
  ) {
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    this.closed = new Promise((resolve) => child.once('close', () => resolve()));
  }

  /**
   * Once the process has ended and its output pipes are read to the end. Node emits 'exit'
   * possibly before the last lines of stderr arrive: with --workers the supervisor's last log
   * line ("all workers stopped", written just before it exits) was missing from stderr() once.
   */
  private readonly closed: Promise<void>;

  /** Resolves with the exit code once the process has ended. */
  readonly exited: Promise<number | null>;

  /** The service's process id. */
  get pid(): number | undefined {
    return this.child.pid;
  }

  static async start(options: ServerOptions = {}): Promise<TestServer> {
    const dataDir = options.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'p11kms-test-'));
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      P11KMS_HOST: '127.0.0.1',
      P11KMS_PORT: '0',
      P11KMS_DATA_DIR: dataDir,
      P11KMS_AUTH: options.auth ?? 'permissive',
      P11KMS_LOG_LEVEL: 'info',
      P11KMS_HSM_PROFILE: activeToken().profile,
      ...(options.credentialsFile ? { P11KMS_CREDENTIALS_FILE: options.credentialsFile } : {}),
      ...(options.accountId ? { P11KMS_ACCOUNT_ID: options.accountId } : {}),
      ...(options.clockOffsetSeconds !== undefined ? { P11KMS_CLOCK_OFFSET_SECONDS: String(options.clockOffsetSeconds) } : {}),
      ...(options.sweepIntervalSeconds !== undefined ? { P11KMS_SWEEP_INTERVAL_SECONDS: String(options.sweepIntervalSeconds) } : {}),
      ...options.env,
    };
    delete env.SOFTHSM2_CONF;
    const child = spawn(process.execPath, [MAIN, 'serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    let out = '';
    const endpoint = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`p11kms did not start within 20 s:\n${err}`)), 20_000);
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /p11kms listening on (\S+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`p11kms exited with ${code} before listening:\n${err}`));
      });
    });
    return new TestServer(endpoint, dataDir, options, child, () => err, /p11kms xks proxy listening on (\S+)/.exec(out)?.[1]);
  }

  /**
   * Waits until the service's log (stderr) matches `pattern`. The log is a separate pipe from
   * stdout and from HTTP responses, so a line can arrive just after the event that wrote it.
   * The limit only bounds a failing test: a busy machine may take seconds to reach a sweep.
   */
  async waitForLog(pattern: RegExp, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pattern.test(this.stderr())) {
      if (Date.now() > deadline) throw new Error(`the service log never matched ${pattern}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Graceful stop (SIGTERM), waiting for the process to exit. */
  async stop(): Promise<void> {
    await this.signal('SIGTERM');
  }

  /** Simulates a crash: SIGKILL, no cleanup. */
  async kill(): Promise<void> {
    await this.signal('SIGKILL');
  }

  /** Starts a new process on the same data directory and token. */
  async restart(overrides: ServerOptions = {}): Promise<TestServer> {
    await this.stop();
    return TestServer.start({ ...this.options, ...overrides, dataDir: this.dataDir });
  }

  /** A KMS client of the AWS SDK for JavaScript v3, unmodified, pointed at this server. */
  client(
    options: { region?: string; accessKeyId?: string; secretAccessKey?: string; sessionToken?: string; clockOffsetMs?: number; tls?: https.AgentOptions } = {},
  ): KMSClient {
    return new KMSClient({
      // HTTPS endpoints: the test CA (and, for mutual TLS, a client certificate) go in an agent.
      ...(options.tls ? { requestHandler: new NodeHttpHandler({ httpsAgent: new https.Agent({ keepAlive: true, ...options.tls }) }) } : {}),
      endpoint: this.endpoint,
      region: options.region ?? 'us-east-1',
      credentials: {
        accessKeyId: options.accessKeyId ?? 'AKIDTEST',
        secretAccessKey: options.secretAccessKey ?? 'test-secret',
        ...(options.sessionToken !== undefined ? { sessionToken: options.sessionToken } : {}),
      },
      maxAttempts: 1,
      ...(options.clockOffsetMs !== undefined ? { systemClockOffset: options.clockOffsetMs } : {}),
    });
  }

  /** Sends a signal without waiting (SIGHUP reloads, SIGTERM drains). */
  sendSignal(sig: NodeJS.Signals): void {
    this.child.kill(sig);
  }

  private signal(sig: NodeJS.Signals): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(sig);
    return this.closed;
  }
}

/** A metric's value from Prometheus text (the first sample whose line starts with `prefix`). */
export function metricSample(metrics: string, prefix: string): number | undefined {
  const line = metrics.split('\n').find((l) => l.startsWith(prefix));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

/** Runs `fn` expecting an AWS SDK error; returns it for assertions. */
export async function expectKmsError(promise: Promise<unknown>): Promise<Error & { name: string; message: string; $metadata?: { httpStatusCode?: number } }> {
  try {
    await promise;
  } catch (err) {
    return err as Error & { name: string; $metadata?: { httpStatusCode?: number } };
  }
  throw new Error('expected the request to fail, but it succeeded');
}

/**
 * What serverPerSuite starts the server with: fixed options, or a function its before hook calls
 * for them, for options made from what earlier hooks of the suite prepared (a credentials file,
 * a database, a test PKI).
 */
export type SuiteServerOptions = ServerOptions | (() => ServerOptions | Promise<ServerOptions>);

/**
 * Registers hooks in the calling describe block: before its tests a server of its own starts
 * and `use` receives it with an SDK client for it; after them the last client it handed out is
 * destroyed and the server stops. `restart` starts a new process on the same data (TestServer.restart) and hands
 * `use` the new server and a client whose clock is offset as the server's (clockOffsetSeconds),
 * so that its signatures are not refused as skewed. Hooks the suite registers after this call
 * run after these (mocha runs a block's hooks in the order they were registered): a `before`
 * sees the server, an `after` runs once it has stopped.
 */
export function serverPerSuite(options: SuiteServerOptions, use: (server: TestServer, kms: KMSClient) => void): { restart(overrides?: ServerOptions): Promise<void> } {
  let current: TestServer | undefined;
  let kms: KMSClient | undefined;
  const started = (server: TestServer) => {
    current = server;
    const offsetSeconds = server.options.clockOffsetSeconds;
    kms = server.client(offsetSeconds ? { clockOffsetMs: offsetSeconds * 1000 } : {});
    use(server, kms);
  };
  before(async () => started(await TestServer.start(typeof options === 'function' ? await options() : options)));
  after(async () => {
    kms?.destroy();
    await current?.stop();
  });
  return { restart: async (overrides = {}) => started(await current!.restart(overrides)) };
}

/** CreateKey with `params`; the new key's id and ARN. */
export async function createdKey(kms: KMSClient, params: Record<string, unknown> = {}): Promise<{ keyId: string; arn: string }> {
  const { KeyMetadata } = await kms.send(new CreateKeyCommand(params));
  return { keyId: KeyMetadata!.KeyId!, arn: KeyMetadata!.Arn! };
}
