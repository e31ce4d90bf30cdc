import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Logger } from 'pino';

export interface WarmUp {
  /** No step starts after this (shutdown). */
  stop(): void;
}

/**
 * Runs, after the service listens, the work the first requests after a start would otherwise
 * do themselves (compiling request validators, building the store's views): measured, the first
 * Encrypt after a start on a store of 100,000 keys and aliases took ~250 ms, nearly all of it
 * such work. One step per event-loop turn, and only while `server` has no request in flight:
 * a request that arrives meanwhile waits for the one step already running, not for the rest
 * (steps between a request's own turns had stretched it by tens of ms). A step that fails is
 * logged and skipped: the same work then happens on first use, as it always can.
 */
export function warmUp(steps: ReadonlyArray<() => void>, server: Server, log: Logger): WarmUp {
  let stopped = false;
  let inFlight = 0;
  let resumeWhenIdle: (() => void) | undefined;
  const started = performance.now();
  const onRequest = (_req: IncomingMessage, res: ServerResponse) => {
    inFlight++;
    res.once('close', () => {
      inFlight--;
      if (inFlight > 0 || !resumeWhenIdle) return;
      const resume = resumeWhenIdle;
      resumeWhenIdle = undefined;
      setImmediate(resume);
    });
  };
  server.on('request', onRequest);
  const finish = () => {
    resumeWhenIdle = undefined;
    server.off('request', onRequest);
  };
  let next = 0;
  const step = () => {
    if (stopped) return finish();
    if (inFlight > 0) return void (resumeWhenIdle = step);
    if (next === steps.length) {
      log.info({ steps: steps.length, ms: Math.round(performance.now() - started) }, 'warmed up: request validators compiled, store views built');
      return finish();
    }
    try {
      steps[next++]();
    } catch (err) {
      log.warn({ err }, 'a warm-up step failed; its work is done on first use instead');
    }
    setImmediate(step);
  };
  setImmediate(step);
  return {
    stop: () => {
      stopped = true;
      finish();
    },
  };
}
