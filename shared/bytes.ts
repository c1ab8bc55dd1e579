/**
 * Buffer and typed-array methods taken once from their prototypes and called on a receiver, for the
 * per-record hot paths (PutRecords' parser and answer, log records, sequence digits). Called as
 * `buf.set(...)`, each is a property load at a site that sees receivers of several shapes (callgrind
 * showed V8 serving these loads through its generic load handler, `Builtins_LoadIC`: ~70–80
 * instructions a call before the method runs; bench/README.md, "Instructions per record"). Loaded
 * from a constant here, the call costs none of that. Same methods, same results: this is how Node's
 * own library calls them (its primordials).
 */
const typedSet = Uint8Array.prototype.set
const bufferSubarray = Buffer.prototype.subarray
const bufferToString = Buffer.prototype.toString
const bufferIndexOf = Buffer.prototype.indexOf

/** `out.set(src, at)`. */
export const setBytes = (out: Uint8Array, src: ArrayLike<number>, at: number): void => typedSet.call(out, src, at)

/** `buf.subarray(start, end)`: a Buffer viewing the same memory. */
export const viewOf = (buf: Buffer, start: number, end: number): Buffer => bufferSubarray.call(buf, start, end)

/** `buf.toString('latin1', start, end)`. */
export const latin1Of = (buf: Buffer, start: number, end: number): string => bufferToString.call(buf, 'latin1', start, end)

/** `buf.indexOf(byte, from)`: memchr. */
export const indexOfByte = (buf: Buffer, byte: number, from: number): number => bufferIndexOf.call(buf, byte, from)
