/**
 * The embedded shard-log store: one directory of segment files per shard under
 * `<root>/<stream>/<shard>/`, group-committed with fdatasync. The shard log is in `fileshard.ts`,
 * what all stores share in `store.ts`.
 */
import { promises as fsp } from 'node:fs'
import { join } from 'node:path'
import { FileShardLog } from './fileshard.js'
import { ShardLogStore, type LogStoreOptions } from './store.js'


export interface FileLogOptions extends LogStoreOptions {
  root: string
}

export class FileLogStore extends ShardLogStore<FileShardLog> {
  private readonly root: string

  constructor(options: FileLogOptions) {
    super(options)
    this.root = options.root
  }

  protected async openLog(stream: string, shard: string): Promise<FileShardLog> {
    const log = new FileShardLog(this.host, this.codec, this.segmentBytes, stream, shard, join(this.root, stream, shard))
    await log.open()
    return log
  }

  protected async removeData(stream: string, shard?: string): Promise<void> {
    await fsp.rm(shard === undefined ? join(this.root, stream) : join(this.root, stream, shard), { recursive: true, force: true })
  }
}
