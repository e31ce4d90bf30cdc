/** The service's notion of now. Injected everywhere so tests can move time. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

export function systemClock(offsetSeconds = 0): Clock {
  const offsetMs = offsetSeconds * 1000;
  return { now: () => Date.now() + offsetMs };
}
