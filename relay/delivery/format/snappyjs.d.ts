// snappyjs ships no types: the two functions it exports, for the buffers this module passes.
declare module 'snappyjs' {
  export function compress(input: Buffer): Buffer
  export function uncompress(input: Buffer, maxLength?: number): Buffer
}
