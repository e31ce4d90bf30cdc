import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  CreateAliasCommand,
  CreateGrantCommand,
  CreateKeyCommand,
  DecryptCommand,
  DescribeKeyCommand,
  EnableKeyRotationCommand,
  EncryptCommand,
  GetKeyPolicyCommand,
  type KMSClient,
  ListKeyRotationsCommand,
  TagResourceCommand,
} from '@aws-sdk/client-kms';
import { expect } from 'chai';
import { type Browser, chromium, type Page } from 'playwright-core';
import { auditGet } from '../support/audit-api';
import { expectKmsError, serverPerSuite, type TestServer } from '../support/server';

const REPO = path.resolve(__dirname, '..', '..', '..');
const CHROMIUM = '/usr/bin/chromium';
const SHOTS = path.join(REPO, 'test-artifacts', 'console');
const ACCOUNT = '111122223333';
const ADMIN = { accessKeyId: 'AKIACONSOLEADMIN0001', secretAccessKey: 'console-admin-secret', accountId: ACCOUNT, principalArn: `arn:aws:iam::${ACCOUNT}:user/admin` };
const APP = { accessKeyId: 'AKIACONSOLEAPP000001', secretAccessKey: 'console-app-secret', accountId: ACCOUNT, principalArn: `arn:aws:iam::${ACCOUNT}:user/app` };
const ROOT = { accessKeyId: 'AKIACONSOLEROOT00001', secretAccessKey: 'console-root-secret', accountId: ACCOUNT };

function writeCredentials(): string {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'p11kms-console-')), 'credentials.json');
  fs.writeFileSync(
    file,
    JSON.stringify({
      accessKeys: [ADMIN, APP, ROOT],
      identityPolicies: {
        [ADMIN.principalArn]: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['kms:*', 'p11kms:ReadAuditTrail'], Resource: '*' }] },
        [APP.principalArn]: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'kms:*', Resource: '*' }] },
      },
    }),
  );
  return file;
}

describe('web console (headless Chromium against the real server)', function () {
  this.timeout(120_000);
  let server: TestServer;
  let browser: Browser;
  let page: Page;
  let app: KMSClient;
  let keyId: string;
  const pageErrors: string[] = [];

  const shot = async (name: string) => {
    await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
  };
  /** Clicks an action button, checks the confirmation names the key, confirms, waits for the dialog to close. */
  const confirmAction = async (button: string, confirm: string, screenshot?: string) => {
    await page.getByRole('button', { name: button, exact: true }).click();
    const dialog = page.locator('dialog[open]');
    await dialog.waitFor();
    expect(await dialog.textContent()).to.contain(keyId);
    if (screenshot) await shot(screenshot);
    await dialog.getByRole('button', { name: confirm, exact: true }).click();
    await dialog.waitFor({ state: 'detached' });
  };
  const keyState = (state: string) => page.locator('.key-page hgroup .badge', { hasText: new RegExp(`^${state}$`) }).waitFor();

  before(async function () {
    if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: npm test installs Debian's chromium package (scripts/run.sh)`);
    // The page under test is built from the current sources (esbuild, about a second).
    execFileSync(process.execPath, [path.join(REPO, 'scripts', 'build-console.mjs')], { stdio: 'pipe' });
    fs.mkdirSync(SHOTS, { recursive: true });
  });
  // Registered before the server's hooks, so that the browser closes before the server stops.
  after(async () => browser?.close());
  serverPerSuite(() => ({ auth: 'strict', credentialsFile: writeCredentials() }), (started) => {
    server = started;
    app = server.client({ accessKeyId: APP.accessKeyId, secretAccessKey: APP.secretAccessKey });
  });
  before(async function () {
    browser = await chromium.launch({ executablePath: CHROMIUM });
    page = await browser.newPage({ viewport: { width: 1360, height: 900 } });
    page.on('pageerror', (err) => pageErrors.push(err.message));
    // The browser reports what the Content-Security-Policy blocked (a style, an image, a script) here.
    page.on('console', (msg) => msg.type() === 'error' && /Content Security Policy|Refused to/.test(msg.text()) && pageErrors.push(msg.text()));
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed' && page) await shot(`failed-${this.currentTest.title.replace(/\W+/g, '-').slice(0, 60)}`);
  });

  it('serves the page with a strict CSP, cache headers and no cookie', async () => {
    const index = await fetch(`${server.endpoint}/console/`);
    expect(index.status).to.equal(200);
    const csp = index.headers.get('content-security-policy')!;
    expect(csp).to.contain("script-src 'self'").and.contain("default-src 'none'").and.contain("frame-ancestors 'none'");
    expect(index.headers.get('cache-control')).to.equal('no-cache');
    expect(index.headers.get('set-cookie')).to.equal(null);
    const html = await index.text();
    expect(html).not.to.match(/<script>(?!<)/); // no inline script
    const bundle = /src="\.\/(app-[A-Z0-9]+\.js)"/i.exec(html)![1];
    const js = await fetch(`${server.endpoint}/console/${bundle}`);
    expect(js.headers.get('cache-control')).to.contain('immutable');
    expect(js.headers.get('content-type')).to.contain('javascript');
    const bare = await fetch(`${server.endpoint}/console`, { redirect: 'manual' });
    expect(bare.status).to.equal(301);
    expect(bare.headers.get('location')).to.equal('/console/');
  });

  it('audit endpoint: SigV4 required, and p11kms:ReadAuditTrail allowed by name in an identity policy in strict mode', async () => {
    const unsigned = await auditGet(server, undefined, '/audit/events');
    expect(unsigned.status).to.equal(403);
    expect(unsigned.body.__type).to.equal('MissingAuthenticationTokenException');
    const badSecret = await auditGet(server, { accessKeyId: ADMIN.accessKeyId, secretAccessKey: 'wrong' }, '/audit/events');
    expect(badSecret.body.__type).to.equal('InvalidSignatureException');
    // kms:* does not include p11kms's own action.
    const denied = await auditGet(server, APP, '/audit/verify');
    expect(denied.body.__type).to.equal('AccessDeniedException');
    expect(denied.body.message).to.equal(`User: ${APP.principalArn} is not authorized to perform: p11kms:ReadAuditTrail on resource: * because no identity-based policy allows the p11kms:ReadAuditTrail action`);
    // The account root is not restricted by identity policies, as in IAM.
    expect((await auditGet(server, ROOT, '/audit/verify')).body.ok).to.equal(true);
    const allowed = await auditGet(server, ADMIN, '/audit/events', { eventName: 'VerifyTrail', error: 'AccessDeniedException' });
    expect(allowed.status).to.equal(200);
    // The refused reads are themselves in the trail, with who tried.
    expect(allowed.body.events.map((e: any) => e.userIdentity.arn)).to.deep.equal([APP.principalArn]);
    // The newest first, `limit` of them, with counts over every match.
    const newest = await auditGet(server, ADMIN, '/audit/events', { limit: '1' });
    expect(newest.body.events).to.have.length(1);
    expect(newest.body.truncated).to.equal(true);
    const all = (await auditGet(server, ADMIN, '/audit/events')).body.events.map((e: any) => e.sequenceNumber);
    expect(all).to.deep.equal([...all].sort((a, b) => b - a));
    expect(all).to.include(newest.body.events[0].sequenceNumber);
    const total = newest.body.summary.byOperation.reduce((n: number, o: { calls: number }) => n + o.calls, 0);
    expect(total).to.equal(newest.body.matched);
    const badLimit = await auditGet(server, ADMIN, '/audit/events', { limit: '0' });
    expect(badLimit.status).to.equal(400);
    expect(badLimit.body.__type).to.equal('ValidationException');
    const badTime = await auditGet(server, ADMIN, '/audit/events', { from: 'yesterday' });
    expect(badTime.body.__type).to.equal('ValidationException');
    expect(badTime.body.message).to.contain("'from'");
  });

  it('signs in with an access key and finds a key created through the API in the table', async () => {
    await page.goto(`${server.endpoint}/console/`);
    await page.getByLabel('Access key ID').fill(ADMIN.accessKeyId);
    await page.getByLabel('Secret access key').fill('not-the-secret');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'InvalidSignatureException' }).waitFor();
    await shot('sign-in');
    await page.getByLabel('Secret access key').fill(ADMIN.secretAccessKey);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Keys in us-east-1' }).waitFor();
    // The secret lives in this tab's session storage only.
    expect(await page.evaluate('Object.keys(localStorage).length')).to.equal(0);
    expect(await page.evaluate('document.cookie')).to.equal('');
    expect(await page.evaluate('Object.keys(sessionStorage)')).to.deep.equal(['p11kms.console.session']);

    const created = await app.send(new CreateKeyCommand({ Description: 'billing data' }));
    keyId = created.KeyMetadata!.KeyId!;
    await app.send(new CreateAliasCommand({ AliasName: 'alias/billing', TargetKeyId: keyId }));
    await app.send(new CreateKeyCommand({ Description: 'signing', KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }));
    await page.getByRole('button', { name: 'Refresh' }).click();
    const row = page.locator(`tr[data-key-id="${keyId}"]`);
    await row.waitFor();
    expect(await row.textContent()).to.contain('alias/billing').and.contain('SYMMETRIC_DEFAULT').and.contain('Enabled').and.contain('AWS_KMS');
    await page.getByLabel('Filter keys').fill('billing');
    await page.locator('tbody tr').filter({ hasNotText: 'alias/billing' }).waitFor({ state: 'detached' });
    expect(await page.locator('table.keys tbody tr').count()).to.equal(1);
    await page.getByLabel('Filter keys').fill('');
    await page.locator('table.keys tbody tr').nth(1).waitFor();
    await shot('keys');
  });

  it("shows a key's tags, grants and rotation timeline, and rotates it from the console", async () => {
    await app.send(new TagResourceCommand({ KeyId: keyId, Tags: [{ TagKey: 'team', TagValue: 'billing' }] }));
    await app.send(new EnableKeyRotationCommand({ KeyId: keyId, RotationPeriodInDays: 180 }));
    await app.send(new CreateGrantCommand({ KeyId: keyId, GranteePrincipal: APP.principalArn, Operations: ['Decrypt'], Name: 'billing-batch' }));
    await page.locator(`tr[data-key-id="${keyId}"] a`).click();
    await page.getByRole('heading', { name: keyId }).waitFor();
    await page.getByText('every 180 days').waitFor();
    expect(await page.getByRole('article', { name: 'Tags' }).textContent()).to.contain('team').and.contain('billing');
    expect(await page.getByRole('article', { name: 'Grants' }).textContent()).to.contain('billing-batch').and.contain('Decrypt');
    await confirmAction('Rotate now', 'Rotate now');
    await page.getByRole('list', { name: 'Rotation history' }).getByText('rotated on demand').waitFor();
    const { Rotations } = await app.send(new ListKeyRotationsCommand({ KeyId: keyId }));
    expect(Rotations!.map((r) => r.RotationType)).to.deep.equal(['ON_DEMAND']);
    await shot('key');
  });

  it('disables the key from the console, and the API refuses it', async () => {
    await confirmAction('Disable', 'Disable key', 'confirm-disable');
    await keyState('Disabled');
    const refused = await expectKmsError(app.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('x') })));
    expect(refused.name).to.equal('DisabledException');
  });

  it('schedules and cancels deletion', async () => {
    await page.getByRole('button', { name: 'Schedule deletion' }).click();
    await page.locator('dialog[open] input[name="pendingWindowInDays"]').fill('7');
    await page.getByRole('button', { name: 'Cancel', exact: true }).waitFor();
    await page.locator('dialog[open]').getByRole('button', { name: 'Schedule deletion' }).click();
    await keyState('PendingDeletion');
    const pending = (await app.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata!;
    expect(pending.KeyState).to.equal('PendingDeletion');
    const days = (pending.DeletionDate!.getTime() - Date.now()) / 86_400_000;
    expect(days).to.be.within(6.9, 7.1);
    await confirmAction('Cancel deletion', 'Cancel deletion');
    await keyState('Disabled');
    await confirmAction('Enable', 'Enable key');
    await keyState('Enabled');
  });

  it('edits the key policy: a lockout is refused with AWS message, a good policy is saved', async () => {
    const editor = page.getByRole('textbox', { name: 'Key policy document' });
    const original = JSON.parse(await editor.inputValue()) as { Statement: unknown[] };
    const lockout = { Version: '2012-10-17', Statement: [{ Sid: 'AppOnly', Effect: 'Allow', Principal: { AWS: APP.principalArn }, Action: 'kms:*', Resource: '*' }] };
    await editor.fill(JSON.stringify(lockout, null, 2));
    await page.getByRole('button', { name: 'Save policy' }).click();
    const dialog = page.locator('dialog[open]');
    await dialog.getByRole('button', { name: 'Save policy' }).click();
    await dialog.getByRole('alert').waitFor();
    expect(await dialog.getByRole('alert').textContent()).to.equal(
      'MalformedPolicyDocumentException: The new key policy will not allow you to update the key policy in the future.',
    );
    await shot('policy-refused');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    // While the modal is open the page behind it is inert: typing into the editor would be lost.
    await dialog.waitFor({ state: 'detached' });

    const better = { ...original, Statement: [...original.Statement, { Sid: 'AppDecrypt', Effect: 'Allow', Principal: { AWS: APP.principalArn }, Action: 'kms:Decrypt', Resource: '*' }] };
    await editor.fill(JSON.stringify(better));
    expect(await editor.inputValue()).to.equal(JSON.stringify(better));
    await page.getByRole('button', { name: 'Save policy' }).click();
    await page.locator('dialog[open]').getByRole('button', { name: 'Save policy' }).click();
    await page.getByRole('status').filter({ hasText: 'Key policy saved.' }).waitFor();
    const saved = await app.send(new GetKeyPolicyCommand({ KeyId: keyId, PolicyName: 'default' }));
    expect(JSON.parse(saved.Policy!)).to.deep.equal(better);
    // Shown formatted again once the page has reloaded the key.
    const formatted = JSON.stringify(better, null, 2);
    await page.waitForFunction((expected) => (globalThis as any).document.querySelector('textarea.policy').value === expected, formatted);
  });

  it("filters the audit view to one key's Decrypt calls", async () => {
    const other = (await app.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    for (const [id, n] of [[keyId, 2], [other, 1]] as const) {
      const { CiphertextBlob } = await app.send(new EncryptCommand({ KeyId: id, Plaintext: Buffer.from('console test') }));
      for (let i = 0; i < n; i++) await app.send(new DecryptCommand({ CiphertextBlob }));
    }
    await page.getByRole('link', { name: 'Audit' }).click();
    await page.locator('p.count').waitFor();
    await page.getByLabel('Event name').fill('Decrypt');
    await page.getByLabel('Key', { exact: true }).fill(keyId);
    await page.getByRole('button', { name: 'Search' }).click();
    await page.locator('p.count', { hasText: /^2 matching record\(s\)$/ }).waitFor();
    const events = await page.locator('table.records tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-event')));
    expect(events).to.deep.equal(['Decrypt', 'Decrypt']);
    await page.locator('table.records tbody tr').first().click();
    const detail = page.getByRole('article', { name: 'Record detail' });
    await detail.waitFor();
    const record = JSON.parse((await detail.locator('pre').textContent())!) as Record<string, any>;
    expect(record.eventName).to.equal('Decrypt');
    expect(record.resources[0].ARN).to.match(new RegExp(`:key/${keyId}$`));
    expect(record.userIdentity.arn).to.equal(APP.principalArn);
    expect(JSON.stringify(record)).not.to.contain('console test'); // no plaintext
    await page.locator('canvas[aria-label="Calls per operation"]').waitFor();
    await shot('audit');
  });

  it('verifies the trail, then shows the file and line of a record a test changed', async () => {
    await page.getByRole('button', { name: 'Verify trail' }).click();
    await page.getByRole('article', { name: 'Verification result' }).filter({ hasText: 'Trail intact' }).waitFor();

    const dir = path.join(server.dataDir, 'audit');
    const file = fs.readdirSync(dir).filter((f) => /^trail-.*\.jsonl$/.test(f)).sort()[0];
    const lines = fs.readFileSync(path.join(dir, file), 'utf8').split('\n');
    const index = lines.findIndex((l) => l.includes('"eventName":"Decrypt"'));
    // Same length, in place: the service keeps appending to the file while the test edits it.
    const offset = Buffer.byteLength(lines.slice(0, index).join('\n')) + 1 + Buffer.from(lines[index]).indexOf('"eventName":"Decrypt"');
    const fd = fs.openSync(path.join(dir, file), 'r+');
    fs.writeSync(fd, Buffer.from('"eventName":"Encrypt"'), 0, 21, offset);
    fs.closeSync(fd);

    await page.getByRole('button', { name: 'Verify trail' }).click();
    const result = page.getByRole('article', { name: 'Verification result' }).filter({ hasText: 'Trail broken' });
    await result.waitFor();
    const findings = await result.locator('li.finding-error').allTextContents();
    expect(findings.some((f) => f.includes(`${file}:${index + 1}`)), findings.join('\n')).to.equal(true);
    await shot('audit-verify-broken');
  });

  it('shows health: token, key specs and readiness', async () => {
    await page.getByRole('link', { name: 'Health' }).click();
    const specs = page.getByRole('article', { name: 'Key specs' });
    await specs.getByText('✓ SYMMETRIC_DEFAULT').waitFor();
    expect(await page.getByRole('article', { name: 'Service' }).textContent()).to.contain('softhsm2');
    // /ready: each part the service needs, and its state.
    const readiness = page.getByRole('table', { name: 'Readiness' });
    await readiness.waitFor();
    expect((await readiness.locator('tr').allTextContents()).map((t) => t.trim())).to.deep.equal(['tokenok', 'storeok', 'auditok']);
    await shot('health');
  });

  it('ran every page without a script error or anything the Content-Security-Policy blocked', () => {
    expect(pageErrors).to.deep.equal([]);
  });
});
