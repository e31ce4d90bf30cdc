import { createHash } from 'node:crypto';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import { expect } from 'chai';
import { HeaderSignatures } from '../../src/wire/aws-json/sigv4-auth';

/**
 * The service's own signature computation (canonical request built once, signing keys cached)
 * must give exactly what AWS's reference and the AWS SDK's signer give.
 */
describe('SigV4 header signatures', () => {
  // AWS Signature Version 4 test suite (aws-sig-v4-test-suite), all requests signed on
  // 2015-08-30T12:36:00Z for us-east-1/service with this example key.
  const suiteCredentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };
  const suiteDate = new Date('2015-08-30T12:36:00Z');
  const h = (extra: Record<string, string> = {}) => ({ host: 'example.amazonaws.com', 'x-amz-date': '20150830T123600Z', ...extra });
  const suite: Array<{ name: string; method: string; path: string; query?: Record<string, string>; headers: Record<string, string>; body?: string; signature: string }> = [
    { name: 'get-header-key-duplicate', method: 'GET', path: '/', headers: h({ 'my-header1': 'value2,value2,value1' }), signature: 'c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea' },
    { name: 'get-header-value-multiline', method: 'GET', path: '/', headers: h({ 'my-header1': 'value1,value2,value3' }), signature: 'ba17b383a53190154eb5fa66a1b836cc297cc0a3d70a5d00705980573d8ff790' },
    { name: 'get-header-value-order', method: 'GET', path: '/', headers: h({ 'my-header1': 'value4,value1,value3,value2' }), signature: '08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01' },
    { name: 'get-header-value-trim', method: 'GET', path: '/', headers: h({ 'my-header1': 'value1', 'my-header2': '"a   b   c"' }), signature: 'acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736' },
    { name: 'get-unreserved', method: 'GET', path: '/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', headers: h(), signature: '07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f' },
    { name: 'get-utf8', method: 'GET', path: '/ሴ', headers: h(), signature: '8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85' },
    { name: 'get-vanilla', method: 'GET', path: '/', headers: h(), signature: '5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31' },
    { name: 'get-vanilla-empty-query-key', method: 'GET', path: '/', query: { Param1: 'value1' }, headers: h(), signature: 'a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb' },
    { name: 'get-vanilla-query-order-key-case', method: 'GET', path: '/', query: { Param2: 'value2', Param1: 'value1' }, headers: h(), signature: 'b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500' },
    {
      name: 'get-vanilla-query-unreserved',
      method: 'GET',
      path: '/',
      query: { '-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz': '-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz' },
      headers: h(),
      signature: '9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197',
    },
    { name: 'get-vanilla-utf8-query', method: 'GET', path: '/', query: { ሴ: 'bar' }, headers: h(), signature: '2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04' },
    { name: 'post-header-key-sort', method: 'POST', path: '/', headers: h({ 'my-header1': 'value1' }), signature: 'c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c' },
    { name: 'post-header-value-case', method: 'POST', path: '/', headers: h({ 'my-header1': 'VALUE1' }), signature: 'cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d' },
    {
      name: 'post-sts-header-before',
      method: 'POST',
      path: '/',
      headers: h({
        'x-amz-security-token':
          'AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==',
      }),
      signature: '85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead',
    },
    { name: 'post-vanilla', method: 'POST', path: '/', headers: h(), signature: '5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b' },
    { name: 'post-vanilla-query', method: 'POST', path: '/', query: { Param1: 'value1' }, headers: h(), signature: '28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11' },
    { name: 'post-vanilla-query-nonunreserved', method: 'POST', path: '/', query: { '@#$%^': '', '+': '/,?><`";:\\|][{}' }, headers: h(), signature: '66c82657c86e26fb25238d0e69f011edc4c6df5ae71119d7cb98ed9b87393c1e' },
    { name: 'post-vanilla-query-space', method: 'POST', path: '/', query: { p: '' }, headers: h(), signature: 'e71688addb58a26418614085fb730ba3faa623b461c17f48f2fbdb9361b94a9b' },
    { name: 'post-x-www-form-urlencoded', method: 'POST', path: '/', headers: h({ 'content-type': 'application/x-www-form-urlencoded' }), body: 'Param1=value1', signature: 'ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a' },
    {
      name: 'post-x-www-form-urlencoded-parameters',
      method: 'POST',
      path: '/',
      headers: h({ 'content-type': 'application/x-www-form-urlencoded; charset=utf8' }),
      body: 'Param1=value1',
      signature: '1a72ec8f64bd914b0e42e42607c7fbce7fb2c7465f63e3092b3b0d39fa77a6fe',
    },
  ];
  const sha256 = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');

  it('gives the AWS SigV4 test suite signatures, with the signing key computed once and then cached', async () => {
    const signatures = new HeaderSignatures();
    // Twice: the first pass derives the key, the second uses the cached one.
    for (const pass of [1, 2]) {
      for (const v of suite) {
        const got = await signatures.expected(
          { method: v.method, path: v.path, query: v.query ?? {}, headers: v.headers, payloadHash: sha256(v.body ?? '') },
          suiteCredentials,
          { signingDate: suiteDate, region: 'us-east-1', service: 'service', signedHeaders: Object.keys(v.headers).sort() },
        );
        expect(got, `${v.name} (pass ${pass})`).to.equal(v.signature);
      }
    }
  });

  it('signs a Date header as sent: the AWS SigV4 test suite’s get-vanilla of 2011 (SignedHeaders=date;host)', async () => {
    // aws4_testsuite/get-vanilla as botocore keeps it: no X-Amz-Date, the signing date comes from
    // the Date header, which is signed as it was sent.
    const got = await new HeaderSignatures().expected(
      { method: 'GET', path: '/', query: {}, headers: { date: 'Mon, 09 Sep 2011 23:36:00 GMT', host: 'host.foo.com' }, payloadHash: sha256('') },
      suiteCredentials,
      { signingDate: new Date('2011-09-09T23:36:00Z'), region: 'us-east-1', service: 'host', signedHeaders: ['date', 'host'] },
    );
    expect(got).to.equal('b27ccfbfa7df52a200ff74193ca6e32d4b48b8856fab7ebf1c595d0670a7e470');
  });

  it('equals the AWS SDK signer across secrets, dates, regions and services sharing one cache', async () => {
    const signatures = new HeaderSignatures();
    const body = '{"KeyId":"alias/app","Plaintext":"AAAA"}';
    const cases = [
      { secret: 'secret-one', date: '2026-11-30T14:00:00Z', region: 'us-east-1', service: 'kms' },
      { secret: 'secret-two', date: '2026-11-30T14:00:00Z', region: 'us-east-1', service: 'kms' },
      { secret: 'secret-one', date: '2026-12-01T00:00:01Z', region: 'us-east-1', service: 'kms' },
      { secret: 'secret-one', date: '2026-12-01T00:00:01Z', region: 'eu-de', service: 'kms' },
      { secret: 'secret-one', date: '2026-12-01T00:00:01Z', region: 'eu-de', service: 'service' },
      // Back to the first: a cached key must not have been replaced by a later one.
      { secret: 'secret-one', date: '2026-11-30T14:00:00Z', region: 'us-east-1', service: 'kms' },
    ];
    for (const c of cases) {
      const credentials = { accessKeyId: 'AKIACACHE', secretAccessKey: c.secret };
      const signer = new SignatureV4({ credentials, region: c.region, service: c.service, sha256: Hash.bind(null, 'sha256'), uriEscapePath: true, applyChecksum: false });
      const headers = { host: 'kms.local:4599', 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'TrentService.Encrypt', 'user-agent': 'ua' };
      const signed = await signer.sign({ method: 'POST', protocol: 'http:', hostname: 'kms.local', port: 4599, path: '/', query: {}, headers, body }, { signingDate: new Date(c.date) });
      const authorization = String(signed.headers.authorization);
      const signedHeaders = /SignedHeaders=([^,]+)/.exec(authorization)![1].split(';');
      const sent: Record<string, string> = {};
      for (const name of signedHeaders) sent[name] = String(signed.headers[name]);
      const got = await signatures.expected(
        { method: 'POST', path: '/', query: {}, headers: sent, payloadHash: sha256(body) },
        credentials,
        { signingDate: new Date(c.date), region: c.region, service: c.service, signedHeaders },
      );
      expect(got, JSON.stringify(c)).to.equal(/Signature=([0-9a-f]+)/.exec(authorization)![1]);
    }
  });
});
