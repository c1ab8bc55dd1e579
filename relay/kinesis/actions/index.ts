/**
 * The Kinesis Data Streams actions: one row per action, each handled in its own file or small
 * family. Adding an action is a file and a row here (or `KinesisApi.register` at run time).
 */
import type { Handler } from '../context.js'
import { registerStreamConsumer, describeStreamConsumer, listStreamConsumers, deregisterStreamConsumer } from './consumers.js'
import { startStreamEncryption, stopStreamEncryption } from './encryption.js'
import { describeLimits, updateStreamMode } from './limits.js'
import { enableEnhancedMonitoring, disableEnhancedMonitoring } from './monitoring.js'
import { putResourcePolicy, getResourcePolicy, deleteResourcePolicy } from './policies.js'
import { putRecord, putRecords } from './put.js'
import { getRecords, getShardIterator } from './read.js'
import { mergeShards, splitShard, updateShardCount } from './reshard.js'
import { decreaseStreamRetentionPeriod, increaseStreamRetentionPeriod } from './retention.js'
import { listShards } from './shards.js'
import { createStream, deleteStream, describeStream, describeStreamSummary, listStreams } from './streams.js'
import { subscribeToShard } from './subscribe.js'
import { addTagsToStream, listTagsForResource, listTagsForStream, removeTagsFromStream, tagResource, untagResource } from './tags.js'

export const ACTIONS: Readonly<Record<string, Handler>> = {
  CreateStream: createStream,
  DeleteStream: deleteStream,
  DescribeStream: describeStream,
  DescribeStreamSummary: describeStreamSummary,
  ListStreams: listStreams,
  ListShards: listShards,
  PutRecord: putRecord,
  PutRecords: putRecords,
  GetShardIterator: getShardIterator,
  GetRecords: getRecords,
  SubscribeToShard: subscribeToShard,
  SplitShard: splitShard,
  MergeShards: mergeShards,
  UpdateShardCount: updateShardCount,
  IncreaseStreamRetentionPeriod: increaseStreamRetentionPeriod,
  DecreaseStreamRetentionPeriod: decreaseStreamRetentionPeriod,
  AddTagsToStream: addTagsToStream,
  ListTagsForStream: listTagsForStream,
  RemoveTagsFromStream: removeTagsFromStream,
  TagResource: tagResource,
  UntagResource: untagResource,
  ListTagsForResource: listTagsForResource,
  DescribeLimits: describeLimits,
  UpdateStreamMode: updateStreamMode,
  RegisterStreamConsumer: registerStreamConsumer,
  DescribeStreamConsumer: describeStreamConsumer,
  ListStreamConsumers: listStreamConsumers,
  DeregisterStreamConsumer: deregisterStreamConsumer,
  StartStreamEncryption: startStreamEncryption,
  StopStreamEncryption: stopStreamEncryption,
  EnableEnhancedMonitoring: enableEnhancedMonitoring,
  DisableEnhancedMonitoring: disableEnhancedMonitoring,
  PutResourcePolicy: putResourcePolicy,
  GetResourcePolicy: getResourcePolicy,
  DeleteResourcePolicy: deleteResourcePolicy,
}
