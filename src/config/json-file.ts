import * as fs from 'node:fs';

/**
 * Where JSON text fails to parse, as "line L, column C", never V8's own message: since Node 20
 * that quotes the text around the fault (`Unexpected token 'w', ..."cessKey": wJalrXUtnF"... is
 * not valid JSON`), and the files read here hold access key secrets, PINs and seeded key
 * material while the message goes to the log.
 */
export function jsonFaultLocation(text: string, err: unknown): string {
  const message = err instanceof Error ? err.message : '';
  if (/Unexpected end of JSON input/.test(message)) return 'it ends early';
  let position: number | undefined;
  const at = /at position (\d+)/.exec(message);
  if (at) position = Number(at[1]);
  // V8 shows up to 10 characters either side of an unexpected token: where the excerpt sits in
  // the text places the token (without a leading "...", the excerpt starts the text and the
  // token is its first occurrence there).
  const excerpt = /^Unexpected token '([\s\S]*?)', (\.\.\.)?"([\s\S]*?)"(?:\.\.\.)? is not valid JSON$/.exec(message);
  if (position === undefined && excerpt) {
    const [, token, cut, context] = excerpt;
    const found = cut ? text.indexOf(context) : 0;
    if (found >= 0) position = found + (cut ? 10 : Math.max(0, context.indexOf(token)));
  }
  if (position === undefined || position > text.length) return 'at a place the parser did not say';
  const before = text.slice(0, position).split('\n');
  return `at line ${before.length}, column ${before[before.length - 1].length + 1}`;
}

/** Parses a settings file's JSON; a syntax error names the file and the place, never its text. */
export function readJsonFile(file: string): unknown {
  const text = fs.readFileSync(file, 'utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new Error(`${file}: not valid JSON (${jsonFaultLocation(text, err)})`);
  }
}
