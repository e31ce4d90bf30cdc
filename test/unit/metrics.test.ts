import { expect } from 'chai';
import type { AuditEvent } from '../../src/audit/event';
import { ServiceMetrics } from '../../src/server/metrics';
import { metricSample } from '../support/server';

/** The value of exactly this series (its whole label set), not of one it is a prefix of. */
const sample = (body: string, series: string) => metricSample(body, `${series} `);

describe('metrics: observations queued on the request path', () => {
  it('a scrape counts every observation made before it, across several bulk folds and after one', async () => {
    const metrics = new ServiceMetrics();
    // More than two folds' worth (FOLD_AT_OBSERVATIONS is 4096) and a remainder.
    for (let i = 0; i < 10_000; i++) metrics.tokenObserver.call('C_Encrypt', 0.0001, false);
    for (let i = 0; i < 3; i++) metrics.tokenObserver.call('C_Encrypt', 0.2, true);
    const first = (await metrics.render()).body;
    expect(sample(first, 'p11kms_token_call_duration_seconds_count{function="C_Encrypt",outcome="ok"}')).to.equal(10_000);
    expect(sample(first, 'p11kms_token_call_duration_seconds_count{function="C_Encrypt",outcome="error"}')).to.equal(3);
    // Each observation lands in its own bucket: 0.2 s is above 0.1, below 0.25.
    expect(sample(first, 'p11kms_token_call_duration_seconds_bucket{le="0.1",function="C_Encrypt",outcome="error"}')).to.equal(0);
    expect(sample(first, 'p11kms_token_call_duration_seconds_bucket{le="0.25",function="C_Encrypt",outcome="error"}')).to.equal(3);

    metrics.tokenObserver.call('C_Encrypt', 0.0001, false);
    const second = (await metrics.render()).body;
    expect(sample(second, 'p11kms_token_call_duration_seconds_count{function="C_Encrypt",outcome="ok"}')).to.equal(10_001);
  });

  it('counts requests from their audit records by operation and error, as of the scrape', async () => {
    const metrics = new ServiceMetrics();
    const recorded: AuditEvent[] = [];
    const audit = metrics.countingAudit({ record: async (event) => void recorded.push(event) });
    const event = (eventName: string, errorCode?: string) =>
      ({ eventType: 'AwsApiCall', eventName, errorCode, requestID: `r-${recorded.length}`, additionalEventData: { dialect: 'aws-json' } }) as unknown as AuditEvent;
    await audit.record(event('Encrypt'));
    await audit.record(event('Encrypt'));
    await audit.record(event('Decrypt', 'InvalidCiphertextException'));
    expect(recorded).to.have.length(3);
    const body = (await metrics.render()).body;
    expect(sample(body, 'p11kms_requests_total{dialect="aws-json",operation="Encrypt",error="none"}')).to.equal(2);
    expect(sample(body, 'p11kms_requests_total{dialect="aws-json",operation="Decrypt",error="InvalidCiphertextException"}')).to.equal(1);
  });
});
