import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * Every answer of a listener this wraps says `X-Content-Type-Options: nosniff`: a browser takes
 * its Content-Type as sent and never guesses HTML or script from the body (the audit endpoint
 * returns stored text such as key descriptions and user agents; /metrics is text/plain).
 * Set before the handler runs, so every route, error path and `writeHead` keeps it (Node merges
 * headers set earlier into writeHead's). The AWS JSON API (`POST /`) is not wrapped: it answers
 * with AWS KMS's own headers.
 */
export function withNoSniffing(handler: (req: IncomingMessage, res: ServerResponse) => void): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    res.setHeader('X-Content-Type-Options', 'nosniff');
    handler(req, res);
  };
}
