import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';

const ROOT = path.join(__dirname, '..', '..', '..');

/** README.md and every docs/*.md, as paths relative to the repository. */
function documents(): string[] {
  return ['README.md', ...fs.readdirSync(path.join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
}

/** GitHub's anchors for a Markdown file's headings (lower case, punctuation dropped, spaces to dashes, repeats numbered). */
function anchorsOf(file: string): Set<string> {
  const text = fs.readFileSync(path.join(ROOT, file), 'utf8').replace(/```[\s\S]*?```/g, '');
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  for (const [, heading] of text.matchAll(/^#+\s+(.*)$/gm)) {
    const plain = heading.replace(/`/g, '').replace(/\[([^\]]*)\]\([^)]*\)/g, '$1');
    const slug = plain.trim().toLowerCase().replace(/[^\p{L}\p{N}_\- ]/gu, '').replace(/ /g, '-');
    const n = seen.get(slug);
    seen.set(slug, (n ?? -1) + 1);
    anchors.add(n === undefined ? slug : `${slug}-${n + 1}`);
  }
  return anchors;
}

describe('documentation references', () => {
  it('every relative link of README.md and docs/ names a file of the repository and a heading there', () => {
    const broken: string[] = [];
    for (const doc of documents()) {
      const text = fs.readFileSync(path.join(ROOT, doc), 'utf8');
      for (const [, link] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/.test(link)) continue;
        const [file, anchor] = link.split('#');
        const target = file ? path.normalize(path.join(path.dirname(doc), file)) : doc;
        // Links out of the repository (../shared/…) name the development machine's notes.
        if (target.startsWith('..')) continue;
        if (!fs.existsSync(path.join(ROOT, target))) broken.push(`${doc}: ${link} (no such file)`);
        else if (anchor !== undefined && target.endsWith('.md') && !anchorsOf(target).has(anchor)) broken.push(`${doc}: ${link} (no such heading)`);
      }
    }
    expect(broken).to.deep.equal([]);
  });

  it('every docs/*.md the code names (help texts, comments) exists', () => {
    const missing: string[] = [];
    const walk = (dir: string): void => {
      for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
        const full = path.join(dir, entry.name);
        if (entry.isDirectory()) walk(full);
        else if (entry.name.endsWith('.ts')) {
          for (const [doc] of fs.readFileSync(full, 'utf8').matchAll(/docs\/[\w-]+\.md/g)) {
            if (!fs.existsSync(path.join(ROOT, doc))) missing.push(`${path.relative(ROOT, full)}: ${doc}`);
          }
        }
      }
    };
    walk(path.join(ROOT, 'src'));
    expect(missing).to.deep.equal([]);
  });
});
