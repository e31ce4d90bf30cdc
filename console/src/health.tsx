import { ErrorBox, useLoad } from './ui';

interface Health {
  status?: string;
  hsm?: string;
  missingMaterial?: number;
  keySpecs?: { supported: string[]; unsupported: Record<string, string> };
  [other: string]: unknown;
}

async function probe(path: string): Promise<{ status: number; body: unknown } | undefined> {
  const response = await fetch(path, { credentials: 'omit', cache: 'no-store' });
  if (response.status === 404) return undefined;
  const text = await response.text();
  try {
    return { status: response.status, body: JSON.parse(text) };
  } catch {
    return { status: response.status, body: text };
  }
}

/** /health (and /ready, where the service has it) need no signature: they say nothing secret. */
export function HealthView() {
  const { data, error, loading, reload } = useLoad(async () => ({ health: await probe('/health'), ready: await probe('/ready') }), []);
  const health = data?.health?.body as Health | undefined;
  // /ready answers each part's state (token, store, audit trail): `ok` or why not.
  const ready = data?.ready?.body as { status?: string; checks?: Record<string, string> } | undefined;
  const known = new Set(['status', 'hsm', 'missingMaterial', 'keySpecs']);
  const rest = health ? Object.entries(health).filter(([k]) => !known.has(k)) : [];
  return (
    <section class="health" aria-busy={loading}>
      <hgroup>
        <h2>Health</h2>
        <p>
          <button class="secondary outline small" onClick={reload}>
            Refresh
          </button>
        </p>
      </hgroup>
      <ErrorBox error={error} />
      {health && (
        <div class="grid">
          <article aria-label="Service">
            <header>Service</header>
            <dl class="meta">
              <dt>Status</dt>
              <dd>
                <span class={`badge state-${health.status === 'ok' ? 'enabled' : 'disabled'}`}>{String(health.status)}</span> (HTTP {data?.health?.status})
              </dd>
              <dt>HSM profile</dt>
              <dd class="mono">{health.hsm}</dd>
              <dt>Keys with missing material</dt>
              <dd>{health.missingMaterial}</dd>
              <dt>Ready</dt>
              <dd>{data?.ready ? `${ready?.status ?? ''} (HTTP ${data.ready.status})` : 'no /ready endpoint in this version'}</dd>
              {rest.map(([k, v]) => (
                <>
                  <dt>{k}</dt>
                  <dd class="mono">{typeof v === 'object' ? JSON.stringify(v) : String(v)}</dd>
                </>
              ))}
            </dl>
            {ready?.checks ? (
              <table class="checks" aria-label="Readiness">
                <tbody>
                  {Object.entries(ready.checks).map(([part, state]) => (
                    <tr>
                      <th>{part}</th>
                      <td>
                        <span class={`badge state-${state === 'ok' ? 'enabled' : 'pendingdeletion'}`}>{state === 'ok' ? 'ok' : 'failing'}</span> {state === 'ok' ? '' : state}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            ) : (
              data?.ready && <pre class="mono">{JSON.stringify(data.ready.body, null, 2)}</pre>
            )}
          </article>
          <article aria-label="Key specs">
            <header>Key specs this token supports</header>
            <ul class="specs">
              {health.keySpecs?.supported.map((s) => (
                <li class="supported">✓ {s}</li>
              ))}
              {Object.entries(health.keySpecs?.unsupported ?? {}).map(([s, why]) => (
                <li class="unsupported" title={why}>
                  ✗ {s} — {why}
                </li>
              ))}
            </ul>
          </article>
        </div>
      )}
    </section>
  );
}
