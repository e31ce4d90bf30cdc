import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import pino from 'pino';
import type { Clock } from '../../src/clock';
import { loadConfig, loadHsmProfile } from '../../src/config/config';
import { KeyCustody } from '../../src/custody/key-custody';
import { Token } from '../../src/custody/token';
import type { RequestContext, Services } from '../../src/operations';
import { KeyQueue } from '../../src/operations/shared/key-mutation';
import { JsonFileStore } from '../../src/store/json/json-file-store';
import { activeToken } from './test-tokens';

/** A clock the test moves by hand: the one injected part of an in-process service. */
export class ManualClock implements Clock {
  constructor(private time: number) {}

  now(): number {
    return this.time;
  }

  advance(ms: number): void {
    this.time += ms;
  }

  setTo(ms: number): void {
    this.time = ms;
  }
}

export interface InProcessService {
  services: Services;
  store: JsonFileStore;
  clock: ManualClock;
  /** A request from the default account's root in us-east-1. */
  ctx: RequestContext;
  close(): Promise<void>;
}

/**
 * The service's real parts (SoftHSM2 token on a fresh data directory, JSON store,
 * operations) in the test process, with a manual clock, for the background sweepers whose
 * behaviour depends on time passing while they run.
 */
export async function openInProcessService(name: string, startAt: number): Promise<InProcessService> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `p11kms-${name}-`));
  const config = loadConfig({ env: { P11KMS_DATA_DIR: dataDir, P11KMS_HSM_PROFILE: activeToken().profile } });
  const log = pino({ level: 'silent' });
  const store = await JsonFileStore.open(dataDir);
  const token = Token.open(loadHsmProfile(config), dataDir, log);
  const clock = new ManualClock(startAt);
  return {
    services: { store, custody: new KeyCustody(token), clock, log, keyQueue: new KeyQueue() },
    store,
    clock,
    ctx: {
      scope: { region: 'us-east-1', accountId: '111122223333' },
      caller: { accountId: '111122223333', principalArn: 'arn:aws:iam::111122223333:root', accessKeyId: 'TEST' },
      requestId: 'test',
    },
    async close() {
      await store.close();
      token.close();
    },
  };
}

/**
 * Polls `check` every 25 ms; true as soon as it holds (the event), false once `limitMs` has
 * passed. The limit only bounds a failing test: a busy machine may take seconds to reach a
 * background sweep, so it is never a measure of how soon the event should come; it stays
 * below mocha's 30 s so that a failure names what never happened.
 */
export async function until(check: () => Promise<boolean>, limitMs = 20_000): Promise<boolean> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * Resolves once a whole sweep has run that started after this call: what a periodic sweeper
 * does at the current clock, counted in sweeps rather than guessed from a sleep. `sweep()`
 * joins a sweep already running (it may have read the clock before the test moved it), so
 * the first call waits that one out and the second runs, or joins, one that started later.
 */
export async function aWholeSweepFromNow(sweeper: { sweep(): Promise<unknown> }): Promise<void> {
  await sweeper.sweep();
  await sweeper.sweep();
}
