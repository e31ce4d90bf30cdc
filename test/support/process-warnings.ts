/**
 * The process warnings (process.on('warning')) emitted while `run` runs: a deprecation a
 * dependency announces (node-postgres's "client.query() when the client is already executing
 * a query"), a promise rejection handled late (PromiseRejectionHandledWarning). Node emits a
 * warning on the tick after it is raised, so the listener stays one turn of the event loop
 * past `run`. A deprecation is announced once per process: a test asserting its absence
 * fails on the code that raises it when that test is the first to reach it (run its file
 * alone to see it fail).
 */
export async function warningsDuring<T>(run: () => Promise<T>): Promise<{ value: T; warnings: Error[] }> {
  const warnings: Error[] = [];
  const note = (warning: Error) => warnings.push(warning);
  process.on('warning', note);
  try {
    const value = await run();
    await new Promise((resolve) => setImmediate(resolve));
    return { value, warnings };
  } finally {
    process.off('warning', note);
  }
}

/** A warning as a test failure names it: its name and text. */
export function describeWarning(warning: Error): string {
  return `${warning.name}: ${warning.message}`;
}
