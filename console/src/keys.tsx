import {
  type AliasListEntry,
  DescribeKeyCommand,
  GetKeyRotationStatusCommand,
  type KeyMetadata,
  type KMSClient,
  ListAliasesCommand,
  ListKeysCommand,
} from '@aws-sdk/client-kms';
import { useEffect, useState } from 'preact/hooks';
import { ErrorBox, formatDate, StateBadge, useLoad } from './ui';

const PAGE_SIZE = 20;
const DESCRIBE_CONCURRENCY = 6;

export interface KeyRow {
  meta: KeyMetadata;
  aliases: string[];
}

/** Every alias of the region, by target key. */
export async function aliasesByKey(client: KMSClient, keyId?: string): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  let marker: string | undefined;
  do {
    const page = await client.send(new ListAliasesCommand({ Limit: 100, Marker: marker, ...(keyId ? { KeyId: keyId } : {}) }));
    for (const a of page.Aliases ?? ([] as AliasListEntry[])) {
      if (!a.TargetKeyId || !a.AliasName) continue;
      out.set(a.TargetKeyId, [...(out.get(a.TargetKeyId) ?? []), a.AliasName]);
    }
    marker = page.Truncated ? page.NextMarker : undefined;
  } while (marker);
  return out;
}

/**
 * The region's keys, described. KMS has no filtered listing, so the table loads every key once
 * (ListKeys pages of 1000, DescribeKey a few at a time) and filters and pages in the tab.
 */
async function loadKeys(client: KMSClient, progress: (done: number, total: number) => void): Promise<KeyRow[]> {
  const ids: string[] = [];
  let marker: string | undefined;
  do {
    const page = await client.send(new ListKeysCommand({ Limit: 1000, Marker: marker }));
    ids.push(...(page.Keys ?? []).map((k) => k.KeyId!));
    marker = page.Truncated ? page.NextMarker : undefined;
  } while (marker);
  const aliases = await aliasesByKey(client);
  const rows: KeyRow[] = new Array(ids.length);
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < ids.length) {
      const i = next++;
      const { KeyMetadata: meta } = await client.send(new DescribeKeyCommand({ KeyId: ids[i] }));
      rows[i] = { meta: meta!, aliases: aliases.get(ids[i]) ?? [] };
      progress(++done, ids.length);
    }
  };
  await Promise.all(Array.from({ length: DESCRIBE_CONCURRENCY }, worker));
  return rows.sort((a, b) => (b.meta.CreationDate?.getTime() ?? 0) - (a.meta.CreationDate?.getTime() ?? 0));
}

function matches(row: KeyRow, text: string, state: string, spec: string): boolean {
  if (state && row.meta.KeyState !== state) return false;
  if (spec && row.meta.KeySpec !== spec) return false;
  if (!text) return true;
  const t = text.toLowerCase();
  return [row.meta.KeyId, row.meta.Description, ...row.aliases].some((v) => v?.toLowerCase().includes(t));
}

/** Rotation is a per-key call; it is asked only for the rows on screen that can rotate. */
function RotationCell({ client, meta }: { client: KMSClient; meta: KeyMetadata }) {
  const [text, setText] = useState('…');
  useEffect(() => {
    if (meta.KeySpec !== 'SYMMETRIC_DEFAULT' || meta.KeyState === 'PendingDeletion' || meta.KeyState === 'PendingImport') {
      setText('—');
      return;
    }
    let live = true;
    client.send(new GetKeyRotationStatusCommand({ KeyId: meta.KeyId })).then(
      (r) => live && setText(r.KeyRotationEnabled ? `every ${r.RotationPeriodInDays} d` : 'off'),
      () => live && setText('—'),
    );
    return () => {
      live = false;
    };
  }, [client, meta.KeyId, meta.KeyState]);
  return <>{text}</>;
}

export function KeysTable({ client, region }: { client: KMSClient; region: string }) {
  const [progress, setProgress] = useState<[number, number]>([0, 0]);
  const { data: rows, error, loading, reload } = useLoad(() => loadKeys(client, (d, t) => setProgress([d, t])), [client]);
  const [text, setText] = useState('');
  const [state, setState] = useState('');
  const [spec, setSpec] = useState('');
  const [page, setPage] = useState(0);
  useEffect(() => setPage(0), [text, state, spec, rows]);
  const filtered = (rows ?? []).filter((r) => matches(r, text, state, spec));
  const pages = Math.max(1, Math.ceil(filtered.length / PAGE_SIZE));
  const shown = filtered.slice(page * PAGE_SIZE, (page + 1) * PAGE_SIZE);
  const distinct = (pick: (r: KeyRow) => string | undefined) => [...new Set((rows ?? []).map(pick).filter(Boolean) as string[])].sort();
  return (
    <section>
      <hgroup>
        <h2>Keys in {region}</h2>
        <p>
          {rows ? `${rows.length} key(s)` : loading ? `Loading… ${progress[0]}/${progress[1] || '?'}` : ''}
        </p>
      </hgroup>
      <div class="toolbar" role="search">
        <input type="search" placeholder="Filter by id, alias or description" aria-label="Filter keys" value={text} onInput={(e) => setText(e.currentTarget.value)} />
        <select aria-label="Key state" value={state} onChange={(e) => setState(e.currentTarget.value)}>
          <option value="">Any state</option>
          {distinct((r) => r.meta.KeyState).map((s) => (
            <option key={s}>{s}</option>
          ))}
        </select>
        <select aria-label="Key spec" value={spec} onChange={(e) => setSpec(e.currentTarget.value)}>
          <option value="">Any key spec</option>
          {distinct((r) => r.meta.KeySpec).map((s) => (
            <option key={s}>{s}</option>
          ))}
        </select>
        <button class="secondary" onClick={reload} aria-busy={loading}>
          Refresh
        </button>
      </div>
      <ErrorBox error={error} />
      <div class="overflow-auto">
        <table class="striped keys" aria-busy={loading}>
          <thead>
            <tr>
              <th>Key ID</th>
              <th>Aliases</th>
              <th>Key spec</th>
              <th>Usage</th>
              <th>State</th>
              <th>Origin</th>
              <th>Created</th>
              <th>Rotation</th>
              <th>Deletion date</th>
            </tr>
          </thead>
          <tbody>
            {shown.map(({ meta, aliases }) => (
              <tr key={meta.KeyId} data-key-id={meta.KeyId}>
                <td class="mono">
                  <a href={`#/keys/${meta.KeyId}`}>{meta.KeyId}</a>
                </td>
                <td>{aliases.join(', ') || '—'}</td>
                <td>{meta.KeySpec}</td>
                <td>{meta.KeyUsage}</td>
                <td>
                  <StateBadge state={meta.KeyState} />
                </td>
                <td>{meta.Origin}</td>
                <td>{formatDate(meta.CreationDate)}</td>
                <td>
                  <RotationCell client={client} meta={meta} />
                </td>
                <td>{formatDate(meta.DeletionDate)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <nav class="pager" aria-label="Pages">
        <button class="secondary outline" disabled={page === 0} onClick={() => setPage(page - 1)}>
          Previous
        </button>
        <span>
          Page {page + 1} of {pages} ({filtered.length} matching)
        </span>
        <button class="secondary outline" disabled={page + 1 >= pages} onClick={() => setPage(page + 1)}>
          Next
        </button>
      </nav>
    </section>
  );
}
