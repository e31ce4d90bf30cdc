/** Builds a SoftHSM2 2.6 object file: generation, then (type, kind, value) records. */
export function objectFile(records: Array<[number, 1 | 2 | 3, Buffer | number | boolean]>): Buffer {
  const parts: Buffer[] = [Buffer.alloc(8)];
  for (const [type, kind, value] of records) {
    const head = Buffer.alloc(16);
    head.writeBigUInt64BE(BigInt(type), 0);
    head.writeBigUInt64BE(BigInt(kind), 8);
    parts.push(head);
    if (kind === 1) parts.push(Buffer.from([value ? 0xff : 0]));
    else if (kind === 2) {
      const v = Buffer.alloc(8);
      v.writeBigUInt64BE(BigInt(value as number));
      parts.push(v);
    } else {
      const length = Buffer.alloc(8);
      length.writeBigUInt64BE(BigInt((value as Buffer).length));
      parts.push(length, value as Buffer);
    }
  }
  return Buffer.concat(parts);
}
