import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { errorText } from './session';

export function formatDate(value: Date | string | number | undefined): string {
  if (value === undefined || value === null || value === '') return '—';
  const d = value instanceof Date ? value : new Date(value);
  return Number.isNaN(d.getTime()) ? '—' : d.toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, ' UTC');
}

export function ErrorBox({ error }: { error: unknown }) {
  if (!error) return null;
  return (
    <p class="error" role="alert">
      {errorText(error)}
    </p>
  );
}

export function StateBadge({ state }: { state: string | undefined }) {
  return <span class={`badge state-${(state ?? 'unknown').toLowerCase()}`}>{state ?? 'Unknown'}</span>;
}

/** An action the user asked for, waiting for confirmation. */
export interface Pending {
  title: string;
  /** Names the key (id and aliases), so a confirmation is never ambiguous. */
  message: ComponentChildren;
  confirmLabel: string;
  danger?: boolean;
  run: () => Promise<unknown>;
}

/**
 * A modal confirmation: the action runs only on the named button; an error stays in the
 * dialog so the user sees AWS's message next to what they tried.
 */
export function ConfirmDialog({ pending, onDone }: { pending: Pending | undefined; onDone: (ok: boolean) => void }) {
  const ref = useRef<HTMLDialogElement>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  useEffect(() => {
    setError(undefined);
    if (pending && !ref.current?.open) ref.current?.showModal();
    if (!pending && ref.current?.open) ref.current.close();
  }, [pending]);
  if (!pending) return <dialog ref={ref} />;
  const confirm = async () => {
    setBusy(true);
    setError(undefined);
    try {
      await pending.run();
      onDone(true);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <dialog ref={ref} onCancel={() => onDone(false)} aria-labelledby="confirm-title">
      <article>
        <h3 id="confirm-title">{pending.title}</h3>
        <div class="confirm-message">{pending.message}</div>
        <ErrorBox error={error} />
        <footer>
          <button class="secondary" onClick={() => onDone(false)} disabled={busy}>
            Cancel
          </button>
          <button class={pending.danger ? 'danger' : ''} onClick={() => void confirm()} aria-busy={busy} disabled={busy}>
            {pending.confirmLabel}
          </button>
        </footer>
      </article>
    </dialog>
  );
}

/** Runs `load` when its dependencies change; `reload` runs it again. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): { data?: T; error?: unknown; loading: boolean; reload: () => void } {
  const [state, setState] = useState<{ data?: T; error?: unknown; loading: boolean }>({ loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (data) => live && setState({ data, loading: false }),
      (error: unknown) => live && setState({ error, loading: false }),
    );
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick]);
  return { ...state, reload: () => setTick((t) => t + 1) };
}
