/**
 * The shard-log contract (test/contracts/shardlog.ts) against every store: the segment files (each
 * segment fdatasynced, and behind the write-ahead journal with few files open), the in-memory store, and each of them sealed at rest by the encrypting wrapper with the relay's cipher.
 */
import t, { type Test } from 'tap'
import { join } from 'node:path'
import { EncryptedLogStore } from '../../relay/log/encrypted.js'
import { FileLogStore } from '../../relay/log/filelog.js'
import { MemoryLogStore, MemoryVolume } from '../../relay/log/memory.js'
import type { LogStore } from '../../relay/log/types.js'
import { LocalKeyCipher } from '../../relay/encryption.js'
import { shardLogContract, type LogStoreFactory, type LogStoreHarness } from '../contracts/shardlog.js'
import { tempDir } from '../helpers/tmp.js'

/** A harness over `open`, which makes a store on the test's backing state; writes break by failing the shard's flush. */
function harness(open: LogStoreHarness['open']): LogStoreHarness {
  let last: LogStore | null = null
  return {
    async open(setup) {
      last = await open(setup)
      return last
    },
    breakWrites(stream, shard) {
      const log = last?.get(stream, shard) as unknown as { flush: () => Promise<void>; stage?: () => Promise<unknown>; stageNow?: () => unknown } | undefined
      if (!log) throw new Error(`no open log ${stream}/${shard} to break`)
      log.flush = () => Promise.reject(new Error('EIO: i/o error'))
      // A journaled store stages each log's write instead of asking it to flush (at once, or after rolling its segment).
      if (log.stage) log.stage = () => Promise.reject(new Error('EIO: i/o error'))
      if (log.stageNow) log.stageNow = () => { throw new Error('EIO: i/o error') }
    },
  }
}

const files: LogStoreFactory = (t) => {
  const root = tempDir(t)
  return harness(async (setup) => new FileLogStore({ root, segmentBytes: 8192, ...setup }))
}

/**
 * The segment files behind the relay's write-ahead journal, small enough that checkpoints come often,
 * with at most three files open, so segments are closed and reopened all the time.
 */
const journaled: LogStoreFactory = (t) => {
  const root = tempDir(t)
  const journalPath = join(tempDir(t), 'streams.journal')
  return harness(async (setup) => new FileLogStore({ root, journalPath, journalBytes: 16 * 1024, maxOpenFiles: 3, segmentBytes: 8192, ...setup }))
}

const memory: LogStoreFactory = () => {
  const volume = new MemoryVolume()
  return harness(async (setup) => new MemoryLogStore({ volume, segmentBytes: 8192, ...setup }))
}

/** The same store underneath, every stream sealed with one key for the whole test. */
const sealed = (inner: LogStoreFactory): LogStoreFactory => (t: Test) => {
  const cipher = new LocalKeyCipher(join(tempDir(t), 'encryption.key'), () => true)
  const below = inner(t)
  return {
    open: async (setup) => new EncryptedLogStore(await below.open(setup), cipher),
    breakWrites: (stream, shard) => below.breakWrites(stream, shard),
  }
}

shardLogContract(t, 'file log', files)
shardLogContract(t, 'journaled file log', journaled)
shardLogContract(t, 'memory log', memory)
shardLogContract(t, 'encrypted file log', sealed(files))
shardLogContract(t, 'encrypted memory log', sealed(memory))
