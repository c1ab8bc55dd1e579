/**
 * Name-based UUIDs (RFC 9562 version 5, SHA-1) for request ids and channels: the same batch (or
 * delivery stream) always gets the same id, across retries and relay restarts, with no state kept.
 */
import { createHash } from 'node:crypto'
import type { BatchId } from '../types.js'

/** Tributary's namespace for delivery names: fixed forever, or every id changes. */
const NAMESPACE = Buffer.from('4f0c2a6e8b9d5c1e9a7f3b2d6e8c1a40', 'hex')

export function nameUuid(name: string): string {
  const hash = createHash('sha1').update(NAMESPACE).update(name, 'utf8').digest()
  const b = hash.subarray(0, 16)
  b[6] = (b[6]! & 0x0f) | 0x50
  b[8] = (b[8]! & 0x3f) | 0x80
  const h = b.toString('hex')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
}

/** The request id of part `part` of a batch (a batch too large for one request is sent in parts). */
export function batchRequestId(batch: BatchId, part: number): string {
  return nameUuid(`batch/${batch.deliveryStream}/${batch.shardId}/${batch.firstSequence}/${batch.lastSequence}/${part}`)
}
