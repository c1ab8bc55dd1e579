/**
 * Compression of a whole object. Firehose names the object by extension and sets Content-Type
 * only (no Content-Encoding), so readers fetch the compressed bytes as they are.
 */
import { gzip, gzipSync } from 'node:zlib'
import { promisify } from 'node:util'
import type { Compression } from '../types.js'
import { snappyFrame } from './snappy.js'

const gzipAsync = promisify(gzip)

export const COMPRESSED = {
  UNCOMPRESSED: { extension: '', contentType: undefined },
  GZIP: { extension: '.gz', contentType: 'application/gzip' },
  Snappy: { extension: '.snappy', contentType: 'application/x-snappy-framed' },
} as const satisfies Record<Compression, { extension: string; contentType: string | undefined }>

export function compressSync(body: Buffer, compression: Compression): Buffer {
  switch (compression) {
    case 'UNCOMPRESSED': return body
    case 'GZIP': return gzipSync(body)
    case 'Snappy': return snappyFrame(body)
  }
}

/** As compressSync, with gzip on libuv's thread pool so a 5 MiB object does not stall the event loop. */
export async function compressAsync(body: Buffer, compression: Compression): Promise<Buffer> {
  return compression === 'GZIP' ? gzipAsync(body) : compressSync(body, compression)
}
