import * as fs from 'node:fs';
import * as path from 'node:path';
import express, { type Response } from 'express';

export const CONSOLE_PREFIX = '/console';
/** Where scripts/build-console.mjs writes the bundle (dist/console beside dist/src). */
export const CONSOLE_BUILD_DIR = path.resolve(__dirname, '..', '..', 'console');

/**
 * Everything the page may load comes from this origin, nothing runs inline, nothing may frame
 * it. The page talks to the API with fetch (connect-src 'self'); Pico's form icons are data: SVGs.
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** X-Content-Type-Options: nosniff is on every non-API answer of the service (server/no-sniffing.ts). */
const SECURITY_HEADERS = {
  'Content-Security-Policy': CONTENT_SECURITY_POLICY,
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

/**
 * The console's static files. Bundles carry a content hash in their names, so they are
 * cached for a year; index.html names the current bundles and is revalidated every time.
 * No cookie is ever set: the page keeps its credentials in the tab and signs each call.
 */
export function consoleAssetsRouter(dir = CONSOLE_BUILD_DIR): express.Router {
  const router = express.Router();
  router.use((req, res, next) => {
    res.set(SECURITY_HEADERS);
    // GET /console has no trailing slash: relative asset URLs would resolve against /.
    if (req.originalUrl === CONSOLE_PREFIX) return res.redirect(301, `${CONSOLE_PREFIX}/`);
    if (!fs.existsSync(path.join(dir, 'index.html'))) {
      return void res.status(503).type('text/plain').send('The console is not built: run `npm start` (or `npm run build`).\n');
    }
    next();
  });
  router.use(
    express.static(dir, {
      index: 'index.html',
      redirect: false,
      dotfiles: 'ignore',
      setHeaders: (res: Response, file: string) => {
        res.setHeader('Cache-Control', path.basename(file) === 'index.html' ? 'no-cache' : 'public, max-age=31536000, immutable');
      },
    }),
  );
  router.use((_req, res) => void res.status(404).type('text/plain').send('Not found\n'));
  return router;
}
