// node scripts/slow-literals.mjs [paths…]: object literals that define a member after a spread.
//
// Node 20's V8 builds `{ ...source, extra: 1 }` on a slow path: 1.5–2.7 µs where `{ ...source }`
// alone takes ~35 ns and a plain literal ~20 ns, and `{ ...made(), a, b }` 6–10 µs (measured
// with microbenchmarks on this project's 2-core VM). On a request's path that adds up: the
// literals this lists on the path of a key-use request were ~30 µs of an Encrypt's CPU before
// they were rewritten. Off the hot path they are fine; this only says where they are.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const ts = createRequire(path.join(root, 'package.json'))('typescript');
const roots = process.argv.length > 2 ? process.argv.slice(2) : [path.join(root, 'src')];

function* sources(entry) {
  if (fs.statSync(entry).isDirectory()) for (const name of fs.readdirSync(entry).sort()) yield* sources(path.join(entry, name));
  else if (entry.endsWith('.ts') && !entry.endsWith('.d.ts')) yield entry;
}

let found = 0;
for (const root of roots) {
  for (const file of sources(root)) {
    const source = ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true);
    const visit = (node) => {
      if (ts.isObjectLiteralExpression(node)) {
        const members = node.properties;
        const spread = members.findIndex((m) => ts.isSpreadAssignment(m));
        if (spread >= 0 && members.slice(spread + 1).some((m) => !ts.isSpreadAssignment(m))) {
          const { line } = source.getLineAndCharacterOfPosition(node.getStart());
          console.log(`${path.relative(process.cwd(), file)}:${line + 1}: ${node.getText().replace(/\s+/g, ' ').slice(0, 100)}`);
          found++;
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
}
console.error(`${found} object literal(s) define a member after a spread`);
