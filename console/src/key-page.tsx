import {
  CancelKeyDeletionCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  EnableKeyCommand,
  GetKeyLastUsageCommand,
  GetKeyPolicyCommand,
  GetKeyRotationStatusCommand,
  type KMSClient,
  ListGrantsCommand,
  ListKeyRotationsCommand,
  ListResourceTagsCommand,
  PutKeyPolicyCommand,
  RotateKeyOnDemandCommand,
  ScheduleKeyDeletionCommand,
  TagResourceCommand,
  UntagResourceCommand,
  UpdateKeyDescriptionCommand,
} from '@aws-sdk/client-kms';
import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { aliasesByKey } from './keys';
import { ConfirmDialog, ErrorBox, formatDate, type Pending, StateBadge, useLoad } from './ui';

/** One call per section; a section that fails (e.g. rotation of an RSA key) shows its own error. */
async function loadKey(client: KMSClient, keyId: string) {
  const { KeyMetadata: meta } = await client.send(new DescribeKeyCommand({ KeyId: keyId }));
  const id = meta!.KeyId!;
  const settle = <T,>(p: Promise<T>): Promise<Settled<T>> => p.then((value) => ({ value }), (error: unknown) => ({ error }));
  const [aliases, tags, policy, grants, rotation, rotations, usage] = await Promise.all([
    settle(aliasesByKey(client, id).then((m) => m.get(id) ?? [])),
    settle(client.send(new ListResourceTagsCommand({ KeyId: id, Limit: 50 }))),
    settle(client.send(new GetKeyPolicyCommand({ KeyId: id, PolicyName: 'default' }))),
    settle(client.send(new ListGrantsCommand({ KeyId: id, Limit: 100 }))),
    settle(client.send(new GetKeyRotationStatusCommand({ KeyId: id }))),
    settle(client.send(new ListKeyRotationsCommand({ KeyId: id, Limit: 100 }))),
    settle(client.send(new GetKeyLastUsageCommand({ KeyId: id }))),
  ]);
  return { meta: meta!, aliases, tags, policy, grants, rotation, rotations, usage };
}

type Settled<T> = { value: T; error?: undefined } | { error: unknown; value?: undefined };

function Section<T>({ title, result, children }: { title: string; result: Settled<T>; children: (value: T) => ComponentChildren }) {
  return (
    <article class="section" aria-label={title}>
      <header>
        <h3>{title}</h3>
      </header>
      {result.error !== undefined ? <ErrorBox error={result.error} /> : children(result.value as T)}
    </article>
  );
}

function formatPolicy(text: string | undefined): string {
  if (!text) return '';
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

export function KeyPage({ client, keyId }: { client: KMSClient; keyId: string }) {
  const { data, error, loading, reload } = useLoad(() => loadKey(client, keyId), [client, keyId]);
  const [pending, setPending] = useState<Pending>();
  const [policyText, setPolicyText] = useState('');
  const days = useRef(30);
  const description = useRef('');
  const newTag = useRef({ key: '', value: '' });
  const [notice, setNotice] = useState('');
  // Reset the editor only when the stored policy (or the key) changes: a reload after another
  // action (rotate, tag, ...) must not wipe what the user is typing into the editor.
  const storedPolicy = formatPolicy(data?.policy.value?.Policy);
  useEffect(() => setPolicyText(storedPolicy), [storedPolicy, keyId]);

  if (!data) {
    return (
      <section aria-busy={loading}>
        <p>
          <a href="#/keys">← Keys</a>
        </p>
        <ErrorBox error={error} />
      </section>
    );
  }
  const { meta } = data;
  const id = meta.KeyId!;
  const aliases = data.aliases.value ?? [];
  /** How every confirmation names the key: its id and its aliases. */
  const named = (
    <strong class="mono">
      {id}
      {aliases.length > 0 ? ` (${aliases.join(', ')})` : ''}
    </strong>
  );
  const ask = (p: Omit<Pending, 'run'> & { run: () => Promise<unknown>; done: string }) =>
    setPending({
      ...p,
      run: async () => {
        await p.run();
        setNotice(p.done);
      },
    });
  const finish = (ok: boolean) => {
    setPending(undefined);
    if (ok) reload();
  };
  const state = meta.KeyState;
  const symmetric = meta.KeySpec === 'SYMMETRIC_DEFAULT';

  return (
    <section class="key-page">
      <p>
        <a href="#/keys">← Keys</a>
      </p>
      <hgroup>
        <h2 class="mono">{id}</h2>
        <p>
          <StateBadge state={state} /> {aliases.join(', ')} {meta.Description ? `— ${meta.Description}` : ''}
        </p>
      </hgroup>
      {notice && (
        <p class="notice" role="status">
          {notice}
        </p>
      )}
      <div class="toolbar actions">
        {state === 'Enabled' && (
          <button
            class="secondary"
            onClick={() =>
              ask({ title: 'Disable key', message: <p>Disable {named}? Cryptographic operations with it will fail until it is enabled again.</p>, confirmLabel: 'Disable key', danger: true, done: 'Key disabled.', run: () => client.send(new DisableKeyCommand({ KeyId: id })) })
            }
          >
            Disable
          </button>
        )}
        {state === 'Disabled' && (
          <button class="secondary" onClick={() => ask({ title: 'Enable key', message: <p>Enable {named}?</p>, confirmLabel: 'Enable key', done: 'Key enabled.', run: () => client.send(new EnableKeyCommand({ KeyId: id })) })}>
            Enable
          </button>
        )}
        {state !== 'PendingDeletion' && (
          <button
            class="secondary"
            onClick={() => {
              days.current = 30;
              ask({
                title: 'Schedule key deletion',
                message: (
                  <>
                    <p>Schedule {named} for deletion? After the waiting period its key material is destroyed in the token and every ciphertext under it becomes undecryptable.</p>
                    <label>
                      Waiting period (days, 7–30)
                      <input type="number" min={7} max={30} defaultValue="30" name="pendingWindowInDays" onInput={(e) => (days.current = Number(e.currentTarget.value))} />
                    </label>
                  </>
                ),
                confirmLabel: 'Schedule deletion',
                danger: true,
                done: 'Key deletion scheduled.',
                run: () => client.send(new ScheduleKeyDeletionCommand({ KeyId: id, PendingWindowInDays: days.current })),
              });
            }}
          >
            Schedule deletion
          </button>
        )}
        {state === 'PendingDeletion' && (
          <button
            class="secondary"
            onClick={() =>
              ask({ title: 'Cancel key deletion', message: <p>Cancel the deletion of {named}? The key returns in the Disabled state.</p>, confirmLabel: 'Cancel deletion', done: 'Key deletion cancelled; the key is disabled.', run: () => client.send(new CancelKeyDeletionCommand({ KeyId: id })) })
            }
          >
            Cancel deletion
          </button>
        )}
        {symmetric && state === 'Enabled' && (
          <button
            class="secondary"
            onClick={() =>
              ask({ title: 'Rotate key now', message: <p>Rotate {named} now? New key material is created in the token; every earlier version keeps decrypting.</p>, confirmLabel: 'Rotate now', done: 'Key rotated.', run: () => client.send(new RotateKeyOnDemandCommand({ KeyId: id })) })
            }
          >
            Rotate now
          </button>
        )}
        <button
          class="secondary"
          onClick={() => {
            description.current = meta.Description ?? '';
            ask({
              title: 'Edit description',
              message: (
                <>
                  <p>New description of {named}:</p>
                  <input name="description" defaultValue={meta.Description ?? ''} aria-label="Description" onInput={(e) => (description.current = e.currentTarget.value)} />
                </>
              ),
              confirmLabel: 'Save description',
              done: 'Description saved.',
              run: () => client.send(new UpdateKeyDescriptionCommand({ KeyId: id, Description: description.current })),
            });
          }}
        >
          Edit description
        </button>
      </div>

      <div class="grid-sections">
        <Section title="Metadata" result={{ value: meta }}>
          {(m) => (
            <dl class="meta">
              {(
                [
                  ['ARN', m.Arn],
                  ['Account', m.AWSAccountId],
                  ['Key spec', m.KeySpec],
                  ['Key usage', m.KeyUsage],
                  ['Origin', m.Origin],
                  ['Key manager', m.KeyManager],
                  ['Created', formatDate(m.CreationDate)],
                  ['Deletion date', formatDate(m.DeletionDate)],
                  ['Pending window (days)', m.PendingDeletionWindowInDays],
                  ['Valid to', formatDate(m.ValidTo)],
                  ['Encryption algorithms', m.EncryptionAlgorithms?.join(', ')],
                  ['Signing algorithms', m.SigningAlgorithms?.join(', ')],
                  ['MAC algorithms', m.MacAlgorithms?.join(', ')],
                  ['Current key material', m.CurrentKeyMaterialId],
                ] as Array<[string, unknown]>
              )
                .filter(([, v]) => v !== undefined && v !== '' && v !== '—')
                .map(([k, v]) => (
                  <>
                    <dt>{k}</dt>
                    <dd class="mono">{String(v)}</dd>
                  </>
                ))}
            </dl>
          )}
        </Section>

        <Section title="Last usage" result={data.usage}>
          {(u) =>
            u.KeyLastUsage?.Timestamp ? (
              <p>
                <strong>{u.KeyLastUsage.Operation}</strong> at {formatDate(u.KeyLastUsage.Timestamp)}
                <br />
                <small class="mono">request {u.KeyLastUsage.KmsRequestId}</small>
              </p>
            ) : (
              <p>Not used since {formatDate(u.TrackingStartDate)}.</p>
            )
          }
        </Section>

        <Section title="Aliases" result={data.aliases}>
          {(list) => (list.length ? <ul>{list.map((a) => <li class="mono">{a}</li>)}</ul> : <p>No aliases.</p>)}
        </Section>

        <Section title="Tags" result={data.tags}>
          {(t) => (
            <>
              <table class="tags">
                <tbody>
                  {(t.Tags ?? []).map((tag) => (
                    <tr>
                      <td class="mono">{tag.TagKey}</td>
                      <td class="mono">{tag.TagValue}</td>
                      <td>
                        <button
                          class="outline secondary small"
                          onClick={() =>
                            ask({ title: 'Remove tag', message: <p>Remove tag <strong>{tag.TagKey}</strong> from {named}?</p>, confirmLabel: 'Remove tag', danger: true, done: 'Tag removed.', run: () => client.send(new UntagResourceCommand({ KeyId: id, TagKeys: [tag.TagKey!] })) })
                          }
                        >
                          Remove
                        </button>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
              <form
                class="inline"
                onSubmit={(e) => {
                  e.preventDefault();
                  const form = new FormData(e.currentTarget);
                  newTag.current = { key: String(form.get('tagKey')), value: String(form.get('tagValue')) };
                  const { key, value } = newTag.current;
                  ask({
                    title: 'Set tag',
                    message: (
                      <p>
                        Set tag <strong>{key}</strong> = <strong>{value}</strong> on {named}?
                      </p>
                    ),
                    confirmLabel: 'Set tag',
                    done: 'Tag saved.',
                    run: () => client.send(new TagResourceCommand({ KeyId: id, Tags: [{ TagKey: key, TagValue: value }] })),
                  });
                }}
              >
                <input name="tagKey" placeholder="Tag key" aria-label="Tag key" required />
                <input name="tagValue" placeholder="Tag value" aria-label="Tag value" />
                <button type="submit" class="secondary">
                  Set tag
                </button>
              </form>
            </>
          )}
        </Section>

        <Section title="Rotation" result={data.rotation}>
          {(r) => (
            <>
              <p>
                Automatic rotation: <strong>{r.KeyRotationEnabled ? `every ${r.RotationPeriodInDays} days` : 'off'}</strong>
                {r.NextRotationDate ? <> — next {formatDate(r.NextRotationDate)}</> : null}
              </p>
              <ol class="timeline" aria-label="Rotation history">
                <li>
                  <time>{formatDate(meta.CreationDate)}</time> key created
                </li>
                {(data.rotations.value?.Rotations ?? []).map((rot) => (
                  <li>
                    <time>{formatDate(rot.RotationDate)}</time> {rot.RotationType === 'ON_DEMAND' ? 'rotated on demand' : 'rotated automatically'}
                    {rot.KeyMaterialId ? <small class="mono"> material {rot.KeyMaterialId.slice(0, 16)}…</small> : null}
                  </li>
                ))}
              </ol>
            </>
          )}
        </Section>

      </div>

      <Section title="Grants" result={data.grants}>
        {(g) =>
          g.Grants?.length ? (
            <div class="overflow-auto">
              <table class="striped grants">
                <thead>
                  <tr>
                    <th>Grant</th>
                    <th>Grantee</th>
                    <th>Operations</th>
                    <th>Constraints</th>
                    <th>Created</th>
                  </tr>
                </thead>
                <tbody>
                  {g.Grants.map((grant) => (
                    <tr>
                      <td title={grant.GrantId}>
                        {grant.Name || `${grant.GrantId?.slice(0, 12)}…`}
                      </td>
                      <td class="mono">{grant.GranteePrincipal}</td>
                      <td>{grant.Operations?.join(', ')}</td>
                      <td class="mono">{grant.Constraints ? JSON.stringify(grant.Constraints) : '—'}</td>
                      <td>{formatDate(grant.CreationDate)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          ) : (
            <p>No grants.</p>
          )
        }
      </Section>

      <Section title="Key policy" result={data.policy}>
        {() => (
          <form
            onSubmit={(e) => {
              e.preventDefault();
              // The form's own value: a re-render after the last keystroke may not have happened yet.
              const text = String(new FormData(e.currentTarget).get('policy'));
              ask({
                title: 'Change key policy',
                message: (
                  <p>
                    Replace the key policy of {named}? The service refuses a policy that would stop you from changing it again (the lockout safety check).
                  </p>
                ),
                confirmLabel: 'Save policy',
                danger: true,
                done: 'Key policy saved.',
                run: () => client.send(new PutKeyPolicyCommand({ KeyId: id, PolicyName: 'default', Policy: text })),
              });
            }}
          >
            <textarea class="policy mono" name="policy" aria-label="Key policy document" spellcheck={false} rows={Math.min(30, policyText.split('\n').length + 1)} value={policyText} onInput={(e) => setPolicyText(e.currentTarget.value)} />
            <button type="submit">Save policy</button>
          </form>
        )}
      </Section>
      <ConfirmDialog pending={pending} onDone={finish} />
    </section>
  );
}
