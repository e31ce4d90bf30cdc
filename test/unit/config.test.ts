import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { DEFAULTS, loadConfig, loadHsmProfile } from '../../src/config/config';
import { readJsonFile } from '../../src/config/json-file';

describe('configuration', function () {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'p11kms-config-'));
  const file = path.join(dir, 'config.json');

  it('has the documented defaults', () => {
    const config = loadConfig({ env: {} });
    expect(config.host).to.equal('127.0.0.1');
    expect(config.port).to.equal(4599);
    expect(config.dataDir).to.equal(path.resolve('./var'));
    expect(config.accountId).to.equal('111122223333');
    expect(config.auth).to.equal('permissive');
    expect(config.hsmProfile).to.equal(DEFAULTS.hsmProfile);
    expect(fs.existsSync(config.hsmProfile), 'the default profile ships with the repository').to.equal(true);
  });

  it('layers file < environment < flags', () => {
    fs.writeFileSync(file, JSON.stringify({ port: 5000, host: '0.0.0.0', accountId: '222233334444' }));
    const config = loadConfig({ file, env: { P11KMS_PORT: '6000', P11KMS_ACCOUNT_ID: '333344445555' }, flags: { port: '7000' } });
    expect(config.host, 'from the file').to.equal('0.0.0.0');
    expect(config.accountId, 'environment over file').to.equal('333344445555');
    expect(config.port, 'flag over environment').to.equal(7000);
  });

  it('reads every documented environment variable', () => {
    const config = loadConfig({
      env: {
        P11KMS_HOST: '::1',
        P11KMS_PORT: '0',
        P11KMS_DATA_DIR: dir,
        P11KMS_ACCOUNT_ID: '999988887777',
        P11KMS_AUTH: 'strict',
        P11KMS_CREDENTIALS_FILE: '/etc/p11kms/credentials.json',
      },
    });
    expect(config).to.include({ host: '::1', port: 0, dataDir: dir, accountId: '999988887777', auth: 'strict', credentialsFile: '/etc/p11kms/credentials.json' });
  });

  it('every environment variable of the README\'s settings tables sets its setting', () => {
    const readme = fs.readFileSync(path.join(__dirname, '..', '..', '..', 'README.md'), 'utf8');
    const rows = [...readme.matchAll(/^\| (\w+) \| `(P11KMS_\w+)`/gm)].map((m) => ({ key: m[1], variable: m[2] }));
    expect(rows.length, 'settings documented').to.be.greaterThan(30);
    // A value each setting accepts and does not have by default.
    const samples: Record<string, string> = {
      auth: 'strict',
      accountId: '444455556666',
      logLevel: 'debug',
      auditFsync: 'batch',
      unknownTokenObjects: 'destroy',
      requestQuotas: 'aws',
      storeUrl: 'postgres://p11kms@db.example/kms',
      tokenBackends: 'cluster-234abcdefgh=/etc/p11kms/hsm.json',
      port: '4600',
      pin: '9876',
    };
    const defaults = loadConfig({ env: {} }) as unknown as Record<string, unknown>;
    for (const { key, variable } of rows) {
      const env: Record<string, string> = { [variable]: samples[key] ?? (typeof defaults[key] === 'number' ? '7' : '/tmp/p11kms-sample') };
      if (key === 'auth') env.P11KMS_CREDENTIALS_FILE = '/tmp/credentials.json';
      if (key === 'workers') env.P11KMS_STORE_URL = samples.storeUrl;
      if (key === 'tlsClientCa') Object.assign(env, { P11KMS_TLS_CERT: '/tmp/cert.pem', P11KMS_TLS_KEY: '/tmp/key.pem' });
      const config = loadConfig({ env }) as unknown as Record<string, unknown>;
      expect(config[key], `${variable} sets ${key}`).to.not.deep.equal(defaults[key]);
    }
  });

  it('names the file and the line and column of a JSON fault, never the text around it (settings files hold secrets)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'p11kms-json-'));
    try {
      const secret = 'SECRETPIN0123456789abcdef';
      const cases: Array<[string, string]> = [
        [`{"name": "x",\n  "pin": ${secret}}`, 'at line 2, column 10'],
        [`${secret}`, 'at line 1, column 1'],
        [`{"pin": "${secret}" "x": 1}`, `at line 1, column ${secret.length + 12}`],
        [`{"pin": "${secret}",`, 'at line 1, column ' + (secret.length + 12)],
        [`{"pin": "${secret}`, 'at line 1, column ' + (secret.length + 10)],
      ];
      for (const [text, where] of cases) {
        const file = path.join(dir, 'settings.json');
        fs.writeFileSync(file, text);
        let message = '';
        try {
          readJsonFile(file);
        } catch (err) {
          message = (err as Error).message;
        }
        expect(message, text).to.equal(`${file}: not valid JSON (${where})`);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses bad values with a message naming the setting', () => {
    expect(() => loadConfig({ env: { P11KMS_AUTH: 'open' } })).to.throw(/auth must be 'strict' or 'permissive'/);
    expect(() => loadConfig({ env: { P11KMS_PORT: 'http' } })).to.throw(/port must be a number/);
    expect(() => loadConfig({ env: { P11KMS_ACCOUNT_ID: '123' } })).to.throw(/accountId must be 12 digits/);
    expect(() => loadConfig({ env: { P11KMS_AUTH: 'strict' } })).to.throw(/strict authentication needs a credentials file/);
    expect(() => loadConfig({ env: { P11KMS_GRANTS_PER_KEY: '0' } })).to.throw(/grantsPerKey must be a whole number from 1/);
    expect(() => loadConfig({ env: { P11KMS_STORE_JOURNAL_FROM_BYTES: '-1' } })).to.throw(/storeJournalFromBytes must be a whole number from 0/);
    fs.writeFileSync(file, JSON.stringify({ prot: 1 }));
    expect(() => loadConfig({ file, env: {} })).to.throw(/unknown setting 'prot'/);
  });

  it('takes the PIN from P11KMS_PIN over the profile', () => {
    const config = loadConfig({ env: { P11KMS_PIN: 'from-env' } });
    expect(loadHsmProfile(config).pin).to.equal('from-env');
    expect(loadHsmProfile(loadConfig({ env: {} })).pin).to.equal('1234');
  });

  it('loads the SoftHSM2 profile with its quirks and an absolute template path', () => {
    const profile = loadHsmProfile(loadConfig({ env: {} }));
    expect(profile.quirks.gcmTagFailureIsGeneralError).to.equal(true);
    expect(profile.quirks.oaepHashesInToken).to.deep.equal(['sha1']);
    expect(path.isAbsolute(profile.softhsm2ConfTemplate!)).to.equal(true);
    expect(fs.existsSync(profile.softhsm2ConfTemplate!)).to.equal(true);
  });
});
