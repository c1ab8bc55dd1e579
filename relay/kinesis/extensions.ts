/**
 * The Kinesis actions beyond the core set (actions.ts): enhanced fan-out consumers and
 * SubscribeToShard, encryption, enhanced monitoring and resource policies. They need more of the
 * relay than ApiContext carries, so they see an ExtendedContext; relay.ts merges both tables.
 */
import type { MetadataStore } from '../meta/types.js'
import type { ApiContext, StreamExtras } from './actions.js'
import type { StreamState } from '../streams.js'
import { consumerActions, type Consumers } from './consumers.js'
import { encryptionActions, type LocalKeyCipher } from './encryption.js'
import { fanoutActions, type Fanout } from './fanout.js'
import { policyActions } from './policies.js'
import { monitoringActions, type StreamSettingsRegistry } from './settings.js'

export interface ExtendedContext extends ApiContext {
  meta: MetadataStore
  consumers: Consumers
  settings: StreamSettingsRegistry
  fanout: Fanout
  cipher: LocalKeyCipher
}

export type ExtendedHandler = (body: unknown, ctx: ExtendedContext) => Promise<unknown>

export const extendedActions: Record<string, ExtendedHandler> = {
  ...consumerActions,
  ...fanoutActions,
  ...encryptionActions,
  ...monitoringActions,
  ...policyActions,
}

/** DescribeStream(Summary)'s encryption, monitoring and consumer count for a stream. */
export function describeExtras(state: StreamState, settings: StreamSettingsRegistry, consumers: Consumers): StreamExtras {
  const s = settings.get(state.meta.id)
  return {
    EncryptionType: s.encryptionType,
    ...(s.keyId !== null && s.encryptionType === 'KMS' ? { KeyId: s.keyId } : {}),
    EnhancedMonitoring: [{ ShardLevelMetrics: [...s.shardLevelMetrics] }],
    ConsumerCount: consumers.count(state.meta.id),
  }
}
