import pino, { type Logger } from 'pino';

/**
 * The service log (JSON lines on stderr). Secrets never reach it: PINs, secret access keys
 * and request bodies are not logged, and these paths are redacted in case one slips in.
 */
export function createLogger(level: string): Logger {
  return pino(
    {
      level,
      base: { service: 'p11kms' },
      redact: { paths: ['pin', '*.pin', 'soPin', '*.soPin', 'secretAccessKey', '*.secretAccessKey', 'Plaintext', '*.Plaintext'], censor: '[redacted]' },
    },
    pino.destination(2),
  );
}
