/** The service's notion of now. Injected everywhere so tests can move time. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

export function systemClock(offsetSeconds = 0): Clock {
  const offsetMs = offsetSeconds * 1000;
  return { now: () => Date.now() + offsetMs };
}

/**
 * A formatter of whole seconds that formats each second once: timestamps shown to the
 * second (CloudTrail event times, the HTTP Date header) repeat thousands of times a second
 * under load, and Date formatting is not free.
 */
export function oncePerSecond(format: (date: Date) => string): (ms: number) => string {
  let last = { second: NaN, text: '' };
  return (ms) => {
    const second = Math.floor(ms / 1000);
    if (second !== last.second) last = { second, text: format(new Date(second * 1000)) };
    return last.text;
  };
}
