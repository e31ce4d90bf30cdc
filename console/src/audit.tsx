import { BarController, BarElement, CategoryScale, Chart, Legend, LinearScale, LineController, LineElement, PointElement, Tooltip } from 'chart.js';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { type Session, signedGet } from './session';
import { ErrorBox, formatDate } from './ui';

Chart.register(BarController, BarElement, CategoryScale, LinearScale, LineController, LineElement, PointElement, Legend, Tooltip);

type AuditRecord = Record<string, unknown> & {
  eventTime: string;
  eventName: string;
  eventID: string;
  errorCode?: string;
  userIdentity?: { arn?: string; accessKeyId?: string; invokedBy?: string; type?: string };
  resources?: Array<{ ARN: string }>;
  sourceIPAddress?: string;
  sequenceNumber: number;
};

interface LookupResult {
  events: AuditRecord[];
  matched: number;
  truncated: boolean;
  summary: {
    byOperation: Array<{ eventName: string; calls: number; errors: number }>;
    timeline: { bucketSeconds: number; buckets: Array<{ start: string; calls: number; errors: number }> };
  };
}

interface Finding {
  severity: 'error' | 'notice';
  file?: string;
  line?: number;
  sequence?: number;
  message: string;
}

interface VerifyReport {
  ok: boolean;
  findings: Finding[];
  files: number;
  records: number;
  digests: number;
}

/** datetime-local inputs hold local time without a zone; the endpoint takes ISO 8601. */
function isoOf(local: string): string | undefined {
  return local ? new Date(local).toISOString() : undefined;
}

function who(r: AuditRecord): string {
  const u = r.userIdentity ?? {};
  return u.arn ?? u.invokedBy ?? (u.accessKeyId ? `unauthenticated ${u.accessKeyId}` : 'unknown');
}

type ChartConfig = ConstructorParameters<typeof Chart>[1];

function BarChart({ label, config }: { label: string; config: () => ChartConfig }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    const chart = new Chart(canvas.current!, config());
    return () => chart.destroy();
  }, [config]);
  return (
    <div class="chart">
      <canvas ref={canvas} role="img" aria-label={label} />
    </div>
  );
}

const ERROR_COLOUR = '#d93526';
const CALL_COLOUR = '#0172ad';

export function AuditView({ session }: { session: Session }) {
  const [result, setResult] = useState<LookupResult>();
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const [selected, setSelected] = useState<AuditRecord>();
  const [report, setReport] = useState<VerifyReport>();
  const [verifyError, setVerifyError] = useState<unknown>();
  const [verifying, setVerifying] = useState(false);

  const search = async (form?: HTMLFormElement) => {
    const f = form ? new FormData(form) : new FormData();
    const value = (name: string) => String(f.get(name) ?? '').trim() || undefined;
    const failedOnly = f.get('failedOnly') === 'on';
    setBusy(true);
    setError(undefined);
    try {
      setResult(
        await signedGet<LookupResult>(session, '/audit/events', {
          from: isoOf(value('from') ?? '') ?? '24h',
          to: isoOf(value('to') ?? ''),
          eventName: value('eventName'),
          key: value('key'),
          principal: value('principal'),
          error: value('errorCode') ?? (failedOnly ? 'true' : undefined),
        }),
      );
      setSelected(undefined);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  useEffect(() => void search(), [session]);

  const verify = async () => {
    setVerifying(true);
    setVerifyError(undefined);
    setReport(undefined);
    try {
      setReport(await signedGet<VerifyReport>(session, '/audit/verify', {}));
    } catch (err) {
      setVerifyError(err);
    } finally {
      setVerifying(false);
    }
  };

  // New config functions only when the data changes, so each search draws its charts once.
  const configs = useMemo(() => {
    if (!result) return undefined;
    const ops = result.summary.byOperation;
    const buckets = result.summary.timeline.buckets;
    const perOperation = (): ChartConfig => ({
      type: 'bar',
      data: {
        labels: ops.map((o) => o.eventName),
        datasets: [
          { label: 'succeeded', data: ops.map((o) => o.calls - o.errors), backgroundColor: CALL_COLOUR, stack: 'calls' },
          { label: 'failed', data: ops.map((o) => o.errors), backgroundColor: ERROR_COLOUR, stack: 'calls' },
        ],
      },
      options: { animation: false, maintainAspectRatio: false, indexAxis: 'y', scales: { x: { stacked: true, ticks: { precision: 0 } }, y: { stacked: true } } },
    });
    const overTime = (): ChartConfig => ({
      type: 'bar',
      data: {
        labels: buckets.map((b) => formatDate(b.start).slice(5, 16)),
        datasets: [
          { type: 'bar', label: 'calls', data: buckets.map((b) => b.calls), backgroundColor: CALL_COLOUR },
          { type: 'line', label: 'errors', data: buckets.map((b) => b.errors), borderColor: ERROR_COLOUR, backgroundColor: ERROR_COLOUR },
        ],
      },
      options: { animation: false, maintainAspectRatio: false, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
    });
    return { ops: perOperation, time: overTime };
  }, [result]);

  return (
    <section class="audit">
      <hgroup>
        <h2>Audit trail</h2>
        <p>Every call to this service, as CloudTrail records. Your account's records only.</p>
      </hgroup>
      <form
        class="filters"
        onSubmit={(e) => {
          e.preventDefault();
          void search(e.currentTarget);
        }}
      >
        <div class="grid">
          <label>
            From
            <input type="datetime-local" name="from" step={1} />
          </label>
          <label>
            To
            <input type="datetime-local" name="to" step={1} />
          </label>
          <label>
            Event name
            <input name="eventName" placeholder="e.g. Decrypt" />
          </label>
        </div>
        <div class="grid">
          <label>
            Key
            <input name="key" placeholder="key id or key ARN" />
          </label>
          <label>
            Principal
            <input name="principal" placeholder="ARN, access key id or account" />
          </label>
          <label>
            Error code
            <input name="errorCode" placeholder="e.g. AccessDeniedException" />
          </label>
        </div>
        <div class="toolbar">
          <label>
            <input type="checkbox" name="failedOnly" role="switch" /> Failed calls only
          </label>
          <button type="submit" aria-busy={busy}>
            Search
          </button>
          <button type="button" class="secondary" onClick={() => void verify()} aria-busy={verifying}>
            Verify trail
          </button>
        </div>
        <small>With no From, the last 24 hours.</small>
      </form>
      <ErrorBox error={error} />
      <ErrorBox error={verifyError} />
      {report && (
        <article class={report.ok ? 'verify ok' : 'verify broken'} aria-label="Verification result">
          <header>
            <strong>{report.ok ? 'Trail intact' : 'Trail broken'}</strong>: {report.files} file(s), {report.records} record(s), {report.digests} signed digest(s)
          </header>
          {report.findings.length > 0 && (
            <ul class="findings">
              {report.findings.map((f) => (
                <li class={`finding-${f.severity}`}>
                  <span class="mono">
                    {f.file ?? ''}
                    {f.line !== undefined ? `:${f.line}` : ''}
                  </span>{' '}
                  {f.sequence !== undefined ? `(sequence ${f.sequence}) ` : ''}
                  {f.message}
                </li>
              ))}
            </ul>
          )}
        </article>
      )}
      {result && configs && (
        <div class="grid charts">
          <article>
            <header>Calls per operation</header>
            <BarChart label="Calls per operation" config={configs.ops} />
          </article>
          <article>
            <header>Calls and errors over time ({result.summary.timeline.bucketSeconds / 60} min buckets)</header>
            <BarChart label="Calls and errors over time" config={configs.time} />
          </article>
        </div>
      )}
      {result && (
        <>
          <p class="count" role="status">
            {result.matched} matching record(s){result.truncated ? `, newest ${result.events.length} shown` : ''}
          </p>
          <div class="overflow-auto">
            <table class="striped records">
              <thead>
                <tr>
                  <th>Time</th>
                  <th>Event</th>
                  <th>Principal</th>
                  <th>Key</th>
                  <th>Source IP</th>
                  <th>Result</th>
                </tr>
              </thead>
              <tbody>
                {result.events.map((r) => (
                  <tr key={r.eventID} class={selected?.eventID === r.eventID ? 'selected' : ''} onClick={() => setSelected(r)} data-event={r.eventName}>
                    <td>{formatDate(r.eventTime)}</td>
                    <td>
                      <a
                        href="#/audit"
                        onClick={(e) => {
                          e.preventDefault();
                          setSelected(r);
                        }}
                      >
                        {r.eventName}
                      </a>
                    </td>
                    <td class="mono">{who(r)}</td>
                    <td class="mono">{(r.resources ?? []).map((x) => x.ARN.split('/').pop()).join(', ') || '—'}</td>
                    <td>{r.sourceIPAddress}</td>
                    <td class={r.errorCode ? 'failed' : 'ok'}>{r.errorCode ?? 'OK'}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
      {selected && (
        <article class="record" aria-label="Record detail">
          <header>
            <span>
              <strong>{selected.eventName}</strong> — sequence {selected.sequenceNumber}, {formatDate(selected.eventTime)}
            </span>
            <button class="outline secondary small close" onClick={() => setSelected(undefined)}>
              Close
            </button>
          </header>
          <pre class="mono">{JSON.stringify(selected, null, 2)}</pre>
        </article>
      )}
    </section>
  );
}
