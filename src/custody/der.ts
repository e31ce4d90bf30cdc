/** DER helpers for what p11kms reads itself: structures whose length decides what follows. */

/** Total length of the DER SEQUENCE at the start of `der`, from its header; undefined if it is none. */
export function derTotalLength(der: Buffer): number | undefined {
  if (der.length < 2 || der[0] !== 0x30) return undefined;
  const first = der[1];
  if (first < 0x80) return 2 + first;
  const n = first & 0x7f;
  if (n < 1 || n > 3 || der.length < 2 + n) return undefined;
  let len = 0;
  for (let i = 0; i < n; i++) len = (len << 8) | der[2 + i];
  return 2 + n + len;
}
