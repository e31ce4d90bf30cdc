/**
 * AES-GCM IVs from the token's RNG, drawn for many encryptions at once: one C_GenerateRandom of
 * `perDraw` IVs instead of one call per encryption (on SoftHSM2 a call costs ~6 µs whatever its
 * size up to a kilobyte, a quarter of an Encrypt's token work). GCM asks of an IV only that it
 * never repeats under a key, not that it is secret: each IV is handed out once, and 96 random
 * bits from the token's RNG are as unlikely to repeat drawn together as drawn one by one
 * (NIST SP 800-38D, 8.2.2).
 */
export class IvSupply {
  private drawn: Buffer = Buffer.alloc(0);
  private next = 0;

  constructor(
    private readonly ivBytes: number,
    private readonly perDraw = 64,
  ) {}

  /** A fresh IV; `draw(n)` answers n bytes of the token's RNG when the last draw is used up. */
  take(draw: (bytes: number) => Buffer): Buffer {
    if (this.next + this.ivBytes > this.drawn.length) {
      // Replaced only by a draw that succeeded: a failed one leaves nothing half-used behind.
      this.drawn = draw(this.ivBytes * this.perDraw);
      this.next = 0;
    }
    const iv = Buffer.from(this.drawn.subarray(this.next, this.next + this.ivBytes));
    this.next += this.ivBytes;
    return iv;
  }
}
