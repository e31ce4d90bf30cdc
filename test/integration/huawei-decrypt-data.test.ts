import { expect } from 'chai';
import { expectHuaweiError as expectError, huaweiClient } from '../support/huawei-client';
import { serverPerSuite, type TestServer } from '../support/server';

/**
 * decrypt-data against its reference ("Decrypting Data", kms_02_0034): cipher_text is "the
 * cipher_text value in the data encryption result" matching ^[0-9a-zA-Z+/=]{188,5648}$, and
 * encryption_context is "key-value pairs with a maximum length of 8192 characters", required
 * for decryption when it was specified during encryption. Over HTTP against the real server
 * and token.
 */
describe('Huawei dialect: decrypt-data as its reference defines it', function () {
  this.timeout(30_000);
  let server: TestServer;
  let keyId: string;

  serverPerSuite({}, (started) => (server = started));
  before(async () => {
    keyId = await newKey('dd-aes');
  });

  const { hw, newKey } = huaweiClient(() => server.endpoint);

  async function encrypted(plainText: string, context?: Record<string, string>): Promise<string> {
    const enc = await hw('encrypt-data', { key_id: keyId, plain_text: plainText, encryption_context: context });
    expect(enc.status, enc.raw).to.equal(200);
    return enc.body.cipher_text as string;
  }

  it('only the encryption_context used to encrypt opens a ciphertext: a lone surrogate in a key or value is refused (KMS.0208), never read as U+FFFD', async () => {
    for (const context of [{ k: '\ud800' }, { k: 'a\udfffb' }, { '\ud800': 'v' }]) {
      expectError(await hw('encrypt-data', { key_id: keyId, plain_text: 'secret', encryption_context: context }), 400, 'KMS.0208');
    }
    const cipher = await encrypted('secret', { k: '\ufffd' });
    for (const context of [{ k: '\ud800' }, { k: '\udfff' }]) {
      const reply = await hw('decrypt-data', { cipher_text: cipher, encryption_context: context });
      expectError(reply, 400, 'KMS.0208');
      expect(reply.body.error.error_msg).to.contain('well-formed');
    }
    expect((await hw('decrypt-data', { cipher_text: cipher, encryption_context: { k: '\ufffd' } })).body).to.deep.equal({ key_id: keyId, plain_text: 'secret' });
  });

  it('a request body that is not UTF-8 is malformed JSON (KMS.0202), not text with U+FFFD in place of its bytes', async () => {
    const bytes = (text: string) => Buffer.from(text, 'latin1');
    expectError(await hw('encrypt-data', bytes(`{"key_id":"${keyId}","plain_text":"a\xffb"}`)), 400, 'KMS.0202');
    expectError(await hw('encrypt-data', bytes(`{"key_id":"${keyId}","plain_text":"c","encryption_context":{"k":"\xff"}}`)), 400, 'KMS.0202');
    const cipher = await encrypted('c', { k: '\ufffd' });
    expectError(await hw('decrypt-data', bytes(`{"cipher_text":"${cipher}","encryption_context":{"k":"\xfe"}}`)), 400, 'KMS.0202');
    // The same text sent as UTF-8 bytes is read as sent.
    const opened = await hw('decrypt-data', Buffer.from(JSON.stringify({ cipher_text: cipher, encryption_context: { k: '\ufffd' } }), 'utf8'));
    expect(opened.body, opened.raw).to.deep.equal({ key_id: keyId, plain_text: 'c' });
  });

  it('encryption_context allows 8192 characters counted as code points, not UTF-16 units (KMS.0208 beyond)', async () => {
    // {"k":"…"} is 8 characters of JSON around the value.
    const atLimit = { k: '\u{1F600}'.repeat(8192 - 8) };
    expect([...JSON.stringify(atLimit)]).to.have.length(8192);
    const cipher = await encrypted('emoji', atLimit);
    expect((await hw('decrypt-data', { cipher_text: cipher, encryption_context: atLimit })).body.plain_text).to.equal('emoji');
    const beyond = { k: '\u{1F600}'.repeat(8192 - 8 + 1) };
    expectError(await hw('encrypt-data', { key_id: keyId, plain_text: 'x', encryption_context: beyond }), 400, 'KMS.0208');
    expectError(await hw('decrypt-data', { cipher_text: cipher, encryption_context: beyond }), 400, 'KMS.0208');
  });

  it('cipher_text is the Base64 encrypt-data returned: extra padding or stray bits in the last character are KMS.2201, not another name for it', async () => {
    // A plaintext whose ciphertext ends in "==" (one byte in the last group: four unused bits).
    let cipher = '';
    for (let n = 100; !cipher.endsWith('=='); n++) cipher = await encrypted('y'.repeat(n));
    expect((await hw('decrypt-data', { cipher_text: cipher })).status).to.equal(200);
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    const last = cipher.length - 3;
    const strayBits = cipher.slice(0, last) + alphabet[alphabet.indexOf(cipher[last]) ^ 1] + '==';
    expect(Buffer.from(strayBits, 'base64').equals(Buffer.from(cipher, 'base64')), 'Node decodes both to the same bytes').to.equal(true);
    for (const variant of [strayBits, `${cipher}====`]) {
      expectError(await hw('decrypt-data', { cipher_text: variant }), 400, 'KMS.2201');
    }
  });
});
