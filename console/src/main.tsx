import '@picocss/pico/css/pico.min.css';
import '../styles.css';
import { ListKeysCommand } from '@aws-sdk/client-kms';
import { render } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { AuditView } from './audit';
import { HealthView } from './health';
import { KeyPage } from './key-page';
import { KeysTable } from './keys';
import { kmsClient, loadSession, saveSession, type Session } from './session';
import { ErrorBox } from './ui';

function useHashRoute(): string[] {
  const read = () => location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  const [route, setRoute] = useState(read);
  useEffect(() => {
    const onChange = () => setRoute(read());
    addEventListener('hashchange', onChange);
    return () => removeEventListener('hashchange', onChange);
  }, []);
  return route;
}

function SignIn({ onSignedIn }: { onSignedIn: (s: Session) => void }) {
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget as HTMLFormElement);
    const session: Session = {
      accessKeyId: String(form.get('accessKeyId')).trim(),
      secretAccessKey: String(form.get('secretAccessKey')),
      region: String(form.get('region')).trim() || 'us-east-1',
    };
    setBusy(true);
    setError(undefined);
    try {
      // The same check any AWS client would meet on its first call: a signed request.
      await kmsClient(session).send(new ListKeysCommand({ Limit: 1 }));
      onSignedIn(session);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="container signin">
      <article>
        <header>
          <h1>p11kms console</h1>
          <p>Sign in with an access key: one from the service's credentials file in strict mode, any in permissive mode. The secret stays in this tab; every call is signed here with SigV4.</p>
        </header>
        <form onSubmit={(e) => void submit(e)}>
          <label>
            Access key ID
            <input name="accessKeyId" autocomplete="username" required />
          </label>
          <label>
            Secret access key
            <input name="secretAccessKey" type="password" autocomplete="current-password" required />
          </label>
          <label>
            Region
            <input name="region" defaultValue="us-east-1" required />
          </label>
          <ErrorBox error={error} />
          <button type="submit" aria-busy={busy} disabled={busy}>
            Sign in
          </button>
        </form>
      </article>
    </main>
  );
}

function App() {
  const [session, setSession] = useState(loadSession);
  const route = useHashRoute();
  const client = useMemo(() => (session ? kmsClient(session) : undefined), [session]);
  const signIn = (s: Session) => {
    saveSession(s);
    setSession(s);
    if (!location.hash) location.hash = '#/keys';
  };
  const signOut = () => {
    saveSession(undefined);
    setSession(undefined);
  };
  if (!session || !client) return <SignIn onSignedIn={signIn} />;
  const [section = 'keys', id] = route;
  const changeRegion = (e: Event) => {
    const region = (e.currentTarget as HTMLInputElement).value.trim();
    if (region && region !== session.region) signIn({ ...session, region });
  };
  return (
    <>
      <header class="container-fluid topbar">
        <nav>
          <ul>
            <li>
              <strong>p11kms</strong>
            </li>
            <li>
              <a href="#/keys" aria-current={section === 'keys' ? 'page' : undefined}>
                Keys
              </a>
            </li>
            <li>
              <a href="#/audit" aria-current={section === 'audit' ? 'page' : undefined}>
                Audit
              </a>
            </li>
            <li>
              <a href="#/health" aria-current={section === 'health' ? 'page' : undefined}>
                Health
              </a>
            </li>
          </ul>
          <ul>
            <li>
              <label class="region">
                Region <input aria-label="Region" value={session.region} onChange={changeRegion} />
              </label>
            </li>
            <li class="who" title="access key id">
              {session.accessKeyId}
            </li>
            <li>
              <button class="secondary outline" onClick={signOut}>
                Sign out
              </button>
            </li>
          </ul>
        </nav>
      </header>
      <main class="container-fluid">
        {section === 'keys' && !id && <KeysTable client={client} region={session.region} />}
        {section === 'keys' && id && <KeyPage client={client} keyId={id} />}
        {section === 'audit' && <AuditView session={session} />}
        {section === 'health' && <HealthView />}
      </main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
