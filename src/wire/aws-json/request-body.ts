import type { IncomingMessage } from 'node:http';
import { finished } from 'node:stream';
import getRawBody from 'raw-body';

/** Why a request body could not be read (raw-body's error types, and ours for a compressed body). */
export type BodyFailure = 'entity.too.large' | 'encoding.unsupported' | 'unreadable';

/**
 * Reads a request body whole, up to `limit` bytes, with raw-body: the reader body-parser's
 * raw parser wraps, without the rest of Express, whose loading (every body parser, qs,
 * mime-db: ~100 ms) was a seventh of the service's start-up. No inflation: SigV4 signs the
 * bytes sent, and AWS KMS defines no request compression.
 *
 * A body that fails is still read off to its end before `done` hears of it, as body-parser
 * does: an answer sent while the client is still sending would reset its connection.
 */
export function readRequestBody(req: IncomingMessage, limit: number, done: (failure: BodyFailure | undefined, body: Buffer) => void): void {
  const failed = (failure: BodyFailure) => {
    req.resume();
    finished(req, () => done(failure, EMPTY));
  };
  const encoding = (req.headers['content-encoding'] ?? 'identity').toLowerCase();
  if (encoding !== 'identity') return failed('encoding.unsupported');
  getRawBody(req, { length: req.headers['content-length'], limit }, (err, body) => {
    if (err) return failed(err.type === 'entity.too.large' ? 'entity.too.large' : 'unreadable');
    done(undefined, body);
  });
}

const EMPTY = Buffer.alloc(0);
