/**
 * An object store in memory, for unit tests of what writes objects. It keeps the same contract as
 * the files and S3 stores (test/contracts/objectstore.ts), and can be told to fail its next puts.
 */
import type { ObjectStore } from '../types.js'
import { DeliveryError } from '../types.js'
import { checkKey, checkPrefix, compareKeys } from './key.js'

interface StoredObject {
  body: Buffer
  contentType: string
  contentEncoding?: string
}

export class MemoryObjectStore implements ObjectStore {
  readonly description: string
  readonly #objects = new Map<string, StoredObject>()
  readonly #failures: DeliveryError[] = []
  #closed = false

  constructor(name = 'memory') {
    this.description = `memory object store ${name}`
  }

  async put(key: string, body: Buffer, info: { contentType: string; contentEncoding?: string }): Promise<void> {
    this.#checkOpen()
    checkKey(key, 'Memory')
    const failure = this.#failures.shift()
    if (failure !== undefined) throw failure
    // A copy: the caller may reuse its buffer, as a real store would not notice.
    this.#objects.set(key, { body: Buffer.from(body), contentType: info.contentType, ...(info.contentEncoding !== undefined ? { contentEncoding: info.contentEncoding } : {}) })
  }

  async get(key: string): Promise<Buffer | undefined> {
    this.#checkOpen()
    checkKey(key, 'Memory')
    const found = this.#objects.get(key)
    return found === undefined ? undefined : Buffer.from(found.body)
  }

  async list(prefix: string): Promise<string[]> {
    this.#checkOpen()
    checkPrefix(prefix, 'Memory')
    return [...this.#objects.keys()].filter((k) => k.startsWith(prefix)).sort(compareKeys)
  }

  /** The content type and encoding an object was put with. */
  info(key: string): { contentType: string; contentEncoding?: string } | undefined {
    const found = this.#objects.get(key)
    if (found === undefined) return undefined
    return { contentType: found.contentType, ...(found.contentEncoding !== undefined ? { contentEncoding: found.contentEncoding } : {}) }
  }

  /** The next `times` puts throw `error` (default: a retryable `Memory.Unavailable`) and store nothing. */
  failNextPuts(times: number, error?: DeliveryError): void {
    for (let i = 0; i < times; i++) this.#failures.push(error ?? new DeliveryError('Memory.Unavailable', 'the memory store was told to fail this put', { retryable: true }))
  }

  async close(): Promise<void> {
    this.#closed = true
  }

  #checkOpen(): void {
    if (this.#closed) throw new DeliveryError('Memory.Closed', `${this.description} is closed`, { retryable: false })
  }
}
