// Builds the web console (console/ → dist/console/): one JavaScript and one CSS bundle, named by
// content hash so the server can let browsers cache them for a year, and an index.html naming
// them. Everything the page needs is in these files: no CDN, nothing fetched at run time.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outdir = path.join(root, 'dist', 'console');

fs.rmSync(outdir, { recursive: true, force: true });
const result = await esbuild.build({
  absWorkingDir: root,
  entryPoints: { app: 'console/src/main.tsx' },
  bundle: true,
  minify: true,
  sourcemap: 'linked',
  format: 'esm',
  platform: 'browser',
  target: ['chrome110', 'firefox115', 'safari16'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  outdir,
  entryNames: '[name]-[hash]',
  assetNames: '[name]-[hash]',
  loader: { '.svg': 'file', '.woff2': 'file' },
  define: { 'process.env.NODE_ENV': '"production"' },
  metafile: true,
  logLevel: 'warning',
});

const outputs = Object.keys(result.metafile.outputs).map((p) => path.basename(p));
const js = outputs.find((f) => /^app-[A-Z0-9]+\.js$/i.test(f));
const css = outputs.find((f) => /^app-[A-Z0-9]+\.css$/i.test(f));
if (!js || !css) throw new Error(`console build produced no app bundle: ${outputs.join(', ')}`);
const html = fs.readFileSync(path.join(root, 'console', 'index.html'), 'utf8').replace('{{js}}', js).replace('{{css}}', css);
fs.writeFileSync(path.join(outdir, 'index.html'), html);
const size = (f) => `${(fs.statSync(path.join(outdir, f)).size / 1024).toFixed(0)} KiB`;
process.stderr.write(`p11kms: console built in dist/console (${js} ${size(js)}, ${css} ${size(css)})\n`);
