/**
 * Splits a byte stream on a delimiter, holding at most `maxBytes` of an unfinished frame. A frame that
 * outgrows the bound is reported once and skipped up to the next delimiter, so a flood with no
 * delimiter costs at most `maxBytes` of memory. (serialport's ReadlineParser has no such bound.)
 */
export class Splitter {
  private held: Buffer = Buffer.alloc(0)
  /** Inside an over-long frame: discard up to the next delimiter. */
  private skipping = false

  constructor(
    private readonly delimiter: Buffer,
    private readonly maxBytes: number,
    private readonly frame: (bytes: Buffer) => void,
    private readonly overflow: (head: Buffer) => void,
  ) {
    if (delimiter.length === 0) throw new TypeError('the delimiter must be at least one byte')
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return
    const data = this.held.length ? Buffer.concat([this.held, chunk]) : chunk
    // Resume the search where a delimiter split across chunks could begin.
    let pos = Math.max(0, this.held.length - (this.delimiter.length - 1))
    let start = 0
    for (;;) {
      const at = data.indexOf(this.delimiter, pos)
      if (at < 0) break
      const frame = data.subarray(start, at)
      if (this.skipping) this.skipping = false
      else if (frame.length > this.maxBytes) this.overflow(frame.subarray(0, 64))
      else this.frame(frame)
      start = pos = at + this.delimiter.length
    }
    const rest = data.subarray(start)
    if (this.skipping || rest.length > this.maxBytes) {
      if (!this.skipping) this.overflow(rest.subarray(0, 64))
      this.skipping = true
      // Keep only what could be the start of a delimiter.
      this.held = Buffer.from(rest.subarray(Math.max(0, rest.length - (this.delimiter.length - 1))))
    } else {
      this.held = Buffer.from(rest)
    }
  }

  /** Drops the unfinished frame; returns how many bytes it held. */
  reset(): number {
    const n = this.skipping ? 0 : this.held.length
    this.held = Buffer.alloc(0)
    this.skipping = false
    return n
  }
}
