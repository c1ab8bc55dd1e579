/**
 * Per-stream settings the API reports back (encryption, enhanced monitoring), held in memory for
 * the hot path (the log asks whether a stream is encrypted on every append) and saved in the
 * metadata store. The actions that change them are in kinesis/actions/ (encryption, monitoring).
 */
import type { MetadataStore, StreamSettings } from './meta/types.js'
import type { Streams } from './streams.js'

const DEFAULTS: StreamSettings = { encryptionType: 'NONE', keyId: null, shardLevelMetrics: [] }

export class StreamSettingsRegistry {
  private readonly meta: MetadataStore
  private readonly byStream = new Map<string, StreamSettings>()

  constructor(meta: MetadataStore) {
    this.meta = meta
  }

  /** Loads the settings of every stream the relay has; call before ingest starts. */
  async load(streams: Streams): Promise<void> {
    for (const state of streams.list()) {
      const saved = await this.meta.getStreamSettings(state.meta.id)
      if (saved) this.byStream.set(state.meta.id, saved)
    }
  }

  /** Reads one stream's settings again (cluster: another relay changed them). */
  async refresh(streamId: string): Promise<void> {
    const saved = await this.meta.getStreamSettings(streamId)
    if (saved) this.byStream.set(streamId, saved)
    else this.byStream.delete(streamId)
  }

  get(streamId: string): StreamSettings {
    return this.byStream.get(streamId) ?? DEFAULTS
  }

  isEncrypted(streamId: string): boolean {
    return this.byStream.get(streamId)?.encryptionType === 'KMS'
  }

  /** Saved first, then applied: an append sees the new setting only once it would survive a restart. */
  async update(streamId: string, change: Partial<StreamSettings>): Promise<StreamSettings> {
    const next = { ...this.get(streamId), ...change }
    await this.meta.putStreamSettings(streamId, next)
    this.byStream.set(streamId, next)
    return next
  }
}
