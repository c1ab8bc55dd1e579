/**
 * Class: validation messages. A request whose members have the right JSON types but break the
 * service model's constraints is a ValidationException listing what is wrong, as AWS lists it:
 * "N validation errors detected: Value '…' at 'member' failed to satisfy constraint: …; …".
 *
 * Where the expectations come from:
 * - how AWS forms each message, and the order within a member (not null; enum; pattern; minimum;
 *   maximum; a list's or map's own length, then its keys and values as one constraint each), the
 *   `Value '…'` quoting (null unquoted, lists as [a, b], maps as {k=v}, blobs as
 *   java.nio.HeapByteBuffer[…], structures in a list by class), the cap of ten and "1 validation
 *   error": AWS's answers as kinesalite records them, https://github.com/mhart/kinesalite
 *   validations/index.js and test/*.js (`assertValidation`);
 * - the order of the members: kinesalite's validations/<action>.js, whose member order matches
 *   the answers its tests recorded from AWS (test/putRecord.js: sequenceNumberForOrdering,
 *   partitionKey, explicitHashKey, data, streamName). Members kinesalite does not know (StreamARN,
 *   StreamId and the newer actions: consumers, encryption, monitoring, policies, resource tags,
 *   ListShards' ShardFilter) follow them in the order of AWS's service model, as AWS's order for
 *   them is not recorded anywhere we could read (docs/compatibility.md says so);
 * - each member's constraints (min, max, pattern, enum and its order): AWS's service model, as
 *   botocore ships it (data/kinesis/2013-12-02/service-2.json; the same members as the
 *   @aws-sdk/client-kinesis schemas, whose constraints the SDK leaves out), except where kinesalite
 *   records AWS enforcing what the model no longer states (ShardCount and TargetShardCount at most
 *   100000; Limit and MaxResults at most 10000) and the ShardIteratorType order AWS prints
 *   ([AFTER_SEQUENCE_NUMBER, LATEST, AT_TIMESTAMP, AT_SEQUENCE_NUMBER, TRIM_HORIZON],
 *   kinesalite's test/getShardIterator.js);
 * - StreamName is optional in today's model (StreamARN may name the stream instead), so a request
 *   without either is not "Value null at 'streamName'" (kinesalite's record, from before
 *   StreamARN) but the InvalidArgumentException the relay answers after the constraints;
 * - the checks AWS makes after the constraints pass (InvalidArgumentException): kinesalite's
 *   actions/*.js and test/*.js.
 *
 * Rows are generated: every constrained member of every action, each constraint broken on its own.
 */
import type { Fixture, Row, Value } from './rows.js'

const CLASS = 'validation'
const KINESALITE = 'https://github.com/mhart/kinesalite'
const FORMATION = `${KINESALITE} validations/index.js (message formation, AWS's recorded wording)`
const MODEL = "AWS's service model (botocore data/kinesis/2013-12-02/service-2.json; the @aws-sdk/client-kinesis schemas' members)"

/** A member's constraints, as the model states them. */
type C =
  | { kind: 'string'; required?: boolean; min?: number; max?: number; pattern?: string; enum?: readonly string[] }
  | { kind: 'integer'; required?: boolean; min?: number; max?: number }
  | { kind: 'plain'; required?: boolean } // a blob, timestamp or boolean: no constraint the rows break
  | { kind: 'list'; required?: boolean; min?: number; max?: number; member: C; sample: unknown }
  | { kind: 'map'; required?: boolean; min?: number; max?: number; key: C; value: C }
  | { kind: 'structure'; required?: boolean; fields: Members; sample: unknown }

/** A structure's members in the order AWS lists their problems. */
type Members = [string, C][]

const req = <T extends C>(c: T): T => ({ ...c, required: true })

const STREAM_NAME: C = { kind: 'string', pattern: '[a-zA-Z0-9_.-]+', min: 1, max: 128 }
const STREAM_ARN: C = { kind: 'string', pattern: 'arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+', min: 1, max: 2048 }
const STREAM_ID: C = { kind: 'string', pattern: '[a-z0-9]{20}-[a-z0-9]{3}', min: 1, max: 24 }
const SHARD_ID: C = { kind: 'string', pattern: '[a-zA-Z0-9_.-]+', min: 1, max: 128 }
const SEQUENCE: C = { kind: 'string', pattern: '0|([1-9]\\d{0,128})' }
const HASH_KEY: C = { kind: 'string', pattern: '0|([1-9]\\d{0,38})' }
const NEXT_TOKEN: C = { kind: 'string', min: 1, max: 1048576 }
const CONSUMER_NAME: C = { kind: 'string', pattern: '[a-zA-Z0-9_.-]+', min: 1, max: 128 }
const CONSUMER_ARN: C = { kind: 'string', pattern: '^(arn):aws.*:kinesis:.*:\\d{12}:.*stream\\/[a-zA-Z0-9_.-]+\\/consumer\\/[a-zA-Z0-9_.-]+:[0-9]+', min: 1, max: 2048 }
const RESOURCE_ARN: C = { kind: 'string', required: true, pattern: 'arn:aws.*:kinesis:.*:\\d{12}:.*stream/\\S+', min: 1, max: 2048 }
const TAG_KEY: C = { kind: 'string', min: 1, max: 128 }
const TAG_MAP: C = { kind: 'map', min: 1, max: 200, key: TAG_KEY, value: { kind: 'string', min: 0, max: 256 } }
const TAG_KEYS: C = { kind: 'list', min: 1, max: 50, member: TAG_KEY, sample: 'k' }
const LIMIT_10000: C = { kind: 'integer', min: 1, max: 10000 }
const ITERATOR_TYPES = ['AFTER_SEQUENCE_NUMBER', 'LATEST', 'AT_TIMESTAMP', 'AT_SEQUENCE_NUMBER', 'TRIM_HORIZON']
const STREAM_MODE: C = { kind: 'structure', fields: [['StreamMode', { kind: 'string', required: true, enum: ['PROVISIONED', 'ON_DEMAND'] }]], sample: { StreamMode: 'PROVISIONED' } }
const METRICS = ['IncomingBytes', 'IncomingRecords', 'OutgoingBytes', 'OutgoingRecords', 'WriteProvisionedThroughputExceeded', 'ReadProvisionedThroughputExceeded', 'IteratorAgeMilliseconds', 'ALL']
const PLAIN: C = { kind: 'plain' }
const ENTRY: C = {
  kind: 'structure',
  fields: [['PartitionKey', { kind: 'string', required: true, min: 1, max: 256 }], ['ExplicitHashKey', HASH_KEY], ['Data', req(PLAIN)]],
  sample: { PartitionKey: 'k', Data: 'YQ==' },
}

/** Each action: its members in AWS's order, a valid request, and where the order comes from. */
interface Action { members: Members; valid: Value<Record<string, unknown>>; order: string }

const kinesalite = (file: string) => `member order: ${KINESALITE} validations/${file}.js, then the model's order for members it does not know`
const byModel = "member order: the service model's (kinesalite does not know this action)"
const withStream = (f: Fixture, more: Record<string, unknown> = {}) => ({ StreamName: f.stream, ...more })

const ACTIONS: Record<string, Action> = {
  AddTagsToStream: { members: [['Tags', req(TAG_MAP)], ['StreamName', STREAM_NAME], ['StreamARN', STREAM_ARN], ['StreamId', STREAM_ID]], valid: (f) => withStream(f, { Tags: { a: 'b' } }), order: kinesalite('addTagsToStream') },
  CreateStream: {
    members: [['ShardCount', { kind: 'integer', min: 1, max: 100000 }], ['StreamName', req(STREAM_NAME)], ['StreamModeDetails', STREAM_MODE], ['Tags', TAG_MAP],
      ['WarmThroughputMiBps', { kind: 'integer', min: 0 }], ['MaxRecordSizeInKiB', { kind: 'integer', min: 1024, max: 10240 }]],
    valid: { StreamName: 'never-created', ShardCount: 1 }, order: kinesalite('createStream'),
  },
  DecreaseStreamRetentionPeriod: { members: [['RetentionPeriodHours', req({ kind: 'integer' })], ['StreamName', STREAM_NAME], ['StreamARN', STREAM_ARN], ['StreamId', STREAM_ID]], valid: (f) => withStream(f, { RetentionPeriodHours: 24 }), order: kinesalite('decreaseStreamRetentionPeriod') },
  DeleteResourcePolicy: { members: [['ResourceARN', RESOURCE_ARN], ['StreamId', STREAM_ID]], valid: (f) => ({ ResourceARN: f.streamArn }), order: byModel },
  DeleteStream: { members: [['StreamName', STREAM_NAME], ['EnforceConsumerDeletion', PLAIN], ['StreamARN', STREAM_ARN], ['StreamId', STREAM_ID]], valid: { StreamName: 'never-created' }, order: kinesalite('deleteStream') },
  DeregisterStreamConsumer: { members: [['StreamARN', STREAM_ARN], ['ConsumerName', CONSUMER_NAME], ['ConsumerARN', CONSUMER_ARN], ['StreamId', STREAM_ID]], valid: (f) => ({ StreamARN: f.streamArn, ConsumerName: 'never-registered' }), order: byModel },
  DescribeStream: { members: [['Limit', LIMIT_10000], ['ExclusiveStartShardId', SHARD_ID], ['StreamName', STREAM_NAME], ['StreamARN', STREAM_ARN], ['StreamId', STREAM_ID]], valid: withStream, order: kinesalite('describeStream') },
  DescribeStreamConsumer: { members: [['StreamARN', STREAM_ARN], ['ConsumerName', CONSUMER_NAME], ['ConsumerARN', CONSUMER_ARN], ['StreamId', STREAM_ID]], valid: (f) => ({ ConsumerARN: f.consumerArn }), order: byModel },
  DescribeStreamSummary: { members: [['StreamName', STREAM_NAME], ['StreamARN', STREAM_ARN], ['StreamId', STREAM_ID]], valid: withStream, order: kinesalite('describeStreamSummary') },
  DisableEnhancedMonitoring: {
    members: [['StreamName', STREAM_NAME], ['ShardLevelMetrics', { kind: 'list', required: true, min: 1, max: 7, member: { kind: 'string', enum: METRICS }, sample: 'IncomingBytes' }], ['StreamARN', STREAM_ARN], ['StreamId', STREAM_ID]],
    valid: (f) => withStream(f, { ShardLevelMetrics: ['IncomingBytes'] }), order: byModel,
  },
  EnableEnhancedMonitoring: {
    members: [['StreamName', STREAM_NAME], ['ShardLevelMetrics', { kind: 'list', required: true, min: 1, max: 7, member: { kind: 'string', enum: METRICS }, sample: 'IncomingBytes' }], ['StreamARN', STREAM_ARN], ['StreamId', STREAM_ID]],
    valid: (f) => withStream(f, { ShardLevelMetrics: ['IncomingBytes'] }), order: byModel,
  },
  GetRecords: { members: [['Limit', LIMIT_10000], ['ShardIterator', req({ kind: 'string', min: 1, max: 512 })], ['StreamARN', STREAM_ARN], ['StreamId', STREAM_ID]], valid: { ShardIterator: 'AAAA' }, order: kinesalite('getRecords') },
  GetResourcePolicy: { members: [['ResourceARN', RESOURCE_ARN], ['StreamId', STREAM_ID]], valid: (f) => ({ ResourceARN: f.streamArn }), order: byModel },
  GetShardIterator: {
    members: [['ShardId', req(SHARD_ID)], ['ShardIteratorType', req({ kind: 'string', enum: ITERATOR_TYPES })], ['StartingSequenceNumber', SEQUENCE], ['StreamName', STREAM_NAME], ['Timestamp', PLAIN], ['StreamARN', STREAM_ARN], ['StreamId', STREAM_ID]],
    valid: (f) => withStream(f, { ShardId: 'shardId-000000000000', ShardIteratorType: 'LATEST' }), order: kinesalite('getShardIterator'),
  },
  IncreaseStreamRetentionPeriod: { members: [['RetentionPeriodHours', req({ kind: 'integer' })], ['StreamName', STREAM_NAME], ['StreamARN', STREAM_ARN], ['StreamId', STREAM_ID]], valid: (f) => withStream(f, { RetentionPeriodHours: 24 }), order: kinesalite('increaseStreamRetentionPeriod') },
  ListShards: {
    members: [['ExclusiveStartShardId', SHARD_ID], ['MaxResults', LIMIT_10000], ['NextToken', NEXT_TOKEN], ['StreamCreationTimestamp', PLAIN], ['StreamName', STREAM_NAME],
      ['ShardFilter', { kind: 'structure', fields: [['Type', { kind: 'string', required: true, enum: ['AFTER_SHARD_ID', 'AT_TRIM_HORIZON', 'FROM_TRIM_HORIZON', 'AT_LATEST', 'AT_TIMESTAMP', 'FROM_TIMESTAMP'] }], ['ShardId', SHARD_ID], ['Timestamp', PLAIN]], sample: { Type: 'AT_LATEST' } }],
      ['StreamARN', STREAM_ARN], ['StreamId', STREAM_ID]],
    valid: withStream, order: kinesalite('listShards'),
  },
  ListStreamConsumers: { members: [['StreamARN', req(STREAM_ARN)], ['NextToken', NEXT_TOKEN], ['MaxResults', LIMIT_10000], ['StreamCreationTimestamp', PLAIN], ['StreamId', STREAM_ID]], valid: (f) => ({ StreamARN: f.streamArn }), order: byModel },
  ListStreams: { members: [['Limit', LIMIT_10000], ['ExclusiveStartStreamName', STREAM_NAME], ['NextToken', NEXT_TOKEN]], valid: {}, order: kinesalite('listStreams') },
  ListTagsForResource: { members: [['ResourceARN', RESOURCE_ARN], ['StreamId', STREAM_ID]], valid: (f) => ({ ResourceARN: f.streamArn }), order: byModel },
  ListTagsForStream: { members: [['Limit', { kind: 'integer', min: 1, max: 50 }], ['ExclusiveStartTagKey', TAG_KEY], ['StreamName', STREAM_NAME], ['StreamARN', STREAM_ARN], ['StreamId', STREAM_ID]], valid: withStream, order: kinesalite('listTagsForStream') },
  MergeShards: {
    members: [['ShardToMerge', req(SHARD_ID)], ['AdjacentShardToMerge', req(SHARD_ID)], ['StreamName', STREAM_NAME], ['StreamARN', STREAM_ARN], ['StreamId', STREAM_ID]],
    valid: { StreamName: 'never-created', ShardToMerge: 'shardId-000000000000', AdjacentShardToMerge: 'shardId-000000000001' }, order: kinesalite('mergeShards'),
  },
  PutRecord: {
    members: [['SequenceNumberForOrdering', SEQUENCE], ['PartitionKey', req({ kind: 'string', min: 1, max: 256 })], ['ExplicitHashKey', HASH_KEY], ['Data', req(PLAIN)], ['StreamName', STREAM_NAME], ['StreamARN', STREAM_ARN], ['StreamId', STREAM_ID]],
    valid: { StreamName: 'never-created', PartitionKey: 'k', Data: 'YQ==' }, order: kinesalite('putRecord'),
  },
  PutRecords: {
    members: [['Records', { kind: 'list', required: true, min: 1, max: 500, member: ENTRY, sample: { PartitionKey: 'k', Data: 'YQ==' } }], ['StreamName', STREAM_NAME], ['StreamARN', STREAM_ARN], ['StreamId', STREAM_ID]],
    valid: { StreamName: 'never-created', Records: [{ PartitionKey: 'k', Data: 'YQ==' }] }, order: kinesalite('putRecords'),
  },
  PutResourcePolicy: { members: [['ResourceARN', RESOURCE_ARN], ['StreamId', STREAM_ID], ['Policy', req({ kind: 'string' })]], valid: (f) => ({ ResourceARN: f.streamArn, Policy: '{}' }), order: byModel },
  RegisterStreamConsumer: { members: [['StreamARN', req(STREAM_ARN)], ['ConsumerName', req(CONSUMER_NAME)], ['StreamId', STREAM_ID], ['Tags', TAG_MAP]], valid: { StreamARN: 'arn:aws:kinesis:us-east-1:000000000000:stream/never-created', ConsumerName: 'c' }, order: byModel },
  RemoveTagsFromStream: { members: [['TagKeys', req(TAG_KEYS)], ['StreamName', STREAM_NAME], ['StreamARN', STREAM_ARN], ['StreamId', STREAM_ID]], valid: { StreamName: 'never-created', TagKeys: ['k'] }, order: kinesalite('removeTagsFromStream') },
  SplitShard: {
    members: [['NewStartingHashKey', req(HASH_KEY)], ['StreamName', STREAM_NAME], ['ShardToSplit', req(SHARD_ID)], ['StreamARN', STREAM_ARN], ['StreamId', STREAM_ID]],
    valid: { StreamName: 'never-created', ShardToSplit: 'shardId-000000000000', NewStartingHashKey: '1000' }, order: kinesalite('splitShard'),
  },
  StartStreamEncryption: {
    members: [['StreamName', STREAM_NAME], ['EncryptionType', req({ kind: 'string', enum: ['NONE', 'KMS'] })], ['KeyId', req({ kind: 'string', min: 1, max: 2048 })], ['StreamARN', STREAM_ARN], ['StreamId', STREAM_ID]],
    valid: { StreamName: 'never-created', EncryptionType: 'KMS', KeyId: 'alias/aws/kinesis' }, order: byModel,
  },
  StopStreamEncryption: {
    members: [['StreamName', STREAM_NAME], ['EncryptionType', req({ kind: 'string', enum: ['NONE', 'KMS'] })], ['KeyId', req({ kind: 'string', min: 1, max: 2048 })], ['StreamARN', STREAM_ARN], ['StreamId', STREAM_ID]],
    valid: { StreamName: 'never-created', EncryptionType: 'KMS', KeyId: 'alias/aws/kinesis' }, order: byModel,
  },
  SubscribeToShard: {
    members: [['ConsumerARN', req(CONSUMER_ARN)], ['StreamId', STREAM_ID], ['ShardId', req(SHARD_ID)],
      ['StartingPosition', req({ kind: 'structure', fields: [['Type', { kind: 'string', required: true, enum: ITERATOR_TYPES }], ['SequenceNumber', SEQUENCE], ['Timestamp', PLAIN]], sample: { Type: 'LATEST' } })]],
    valid: { ConsumerARN: 'arn:aws:kinesis:us-east-1:000000000000:stream/never-created/consumer/c:1', ShardId: 'shardId-000000000000', StartingPosition: { Type: 'LATEST' } }, order: byModel,
  },
  TagResource: { members: [['Tags', req(TAG_MAP)], ['ResourceARN', RESOURCE_ARN], ['StreamId', STREAM_ID]], valid: (f) => ({ ResourceARN: f.streamArn, Tags: { a: 'b' } }), order: byModel },
  UntagResource: { members: [['TagKeys', req(TAG_KEYS)], ['ResourceARN', RESOURCE_ARN], ['StreamId', STREAM_ID]], valid: (f) => ({ ResourceARN: f.streamArn, TagKeys: ['k'] }), order: byModel },
  UpdateShardCount: {
    members: [['ScalingType', req({ kind: 'string', enum: ['UNIFORM_SCALING'] })], ['StreamName', STREAM_NAME], ['TargetShardCount', req({ kind: 'integer', min: 1, max: 100000 })], ['StreamARN', STREAM_ARN], ['StreamId', STREAM_ID]],
    valid: { StreamName: 'never-created', ScalingType: 'UNIFORM_SCALING', TargetShardCount: 2 }, order: kinesalite('updateShardCount'),
  },
  UpdateStreamMode: {
    members: [['StreamARN', req(STREAM_ARN)], ['StreamId', STREAM_ID], ['StreamModeDetails', req(STREAM_MODE)], ['WarmThroughputMiBps', { kind: 'integer', min: 0 }]],
    valid: { StreamARN: 'arn:aws:kinesis:us-east-1:000000000000:stream/never-created', StreamModeDetails: { StreamMode: 'ON_DEMAND' } }, order: byModel,
  },
}

// ---- AWS's message formation (kinesalite validations/index.js) ----

const lowerFirst = (s: string) => s[0]!.toLowerCase() + s.slice(1)

/** The value as AWS quotes it: null bare, everything else in single quotes; lists as [a, b], maps as {k=v}. */
function shown(value: unknown, c: C): string {
  if (value === undefined) return 'null'
  if (c.kind === 'list') return `'[${(value as unknown[]).map(String).join(', ')}]'`
  if (c.kind === 'map') return `'{${Object.entries(value as object).map(([k, v]) => `${k}=${String(v)}`).join(', ')}}'`
  return `'${String(value)}'`
}

const violation = (value: string, path: string, constraint: string) => `Value ${value} at '${path}' failed to satisfy constraint: ${constraint}`
const message = (errors: string[]) => `${errors.length} validation error${errors.length === 1 ? '' : 's'} detected: ${errors.join('; ')}`

/** A scalar member's constraints as AWS words them, in AWS's order: enum, pattern, minimum, maximum. */
function scalarRules(c: C): { broken: (v: unknown) => boolean; words: string }[] {
  const out: { broken: (v: unknown) => boolean; words: string }[] = []
  if (c.kind === 'string') {
    if (c.enum) { const set = c.enum; out.push({ broken: (v) => !set.includes(v as string), words: `Member must satisfy enum value set: [${set.join(', ')}]` }) }
    if (c.pattern) { const re = new RegExp(`^(?:${c.pattern})$`); out.push({ broken: (v) => !re.test(v as string), words: `Member must satisfy regular expression pattern: ${c.pattern}` }) }
    if (c.min !== undefined) { const min = c.min; out.push({ broken: (v) => (v as string).length < min, words: `Member must have length greater than or equal to ${min}` }) }
    if (c.max !== undefined) { const max = c.max; out.push({ broken: (v) => (v as string).length > max, words: `Member must have length less than or equal to ${max}` }) }
  }
  if (c.kind === 'integer') {
    if (c.min !== undefined) { const min = c.min; out.push({ broken: (v) => (v as number) < min, words: `Member must have value greater than or equal to ${min}` }) }
    if (c.max !== undefined) { const max = c.max; out.push({ broken: (v) => (v as number) > max, words: `Member must have value less than or equal to ${max}` }) }
  }
  return out
}

/** A list's or map's scalar members as one constraint: "[<enum>, <pattern>, <maximum>, <minimum>]" (kinesalite's childLengths, childKeyLengths, childValueLengths). */
function memberRule(c: C): { broken: (v: unknown) => boolean; words: string } | null {
  const rules = scalarRules(c)
  if (!rules.length) return null
  const lengths = rules.filter((r) => r.words.startsWith('Member must have')).reverse()
  const others = rules.filter((r) => !r.words.startsWith('Member must have'))
  return { broken: (v) => rules.some((r) => r.broken(v)), words: `[${[...others, ...lengths].map((r) => r.words).join(', ')}]` }
}

/** Every problem with `value` as a member `c` at `path`, in AWS's order. */
function problems(value: unknown, c: C, path: string): string[] {
  if (value === undefined) return c.required ? [violation('null', path, 'Member must not be null')] : []
  const at = (words: string) => violation(shown(value, c), path, words)
  switch (c.kind) {
    case 'string':
    case 'integer':
      return scalarRules(c).filter((r) => r.broken(value)).map((r) => at(r.words))
    case 'plain':
      return []
    case 'list': {
      const list = value as unknown[]
      const out: string[] = []
      if (c.min !== undefined && list.length < c.min) out.push(at(`Member must have length greater than or equal to ${c.min}`))
      if (c.max !== undefined && list.length > c.max) out.push(at(`Member must have length less than or equal to ${c.max}`))
      const rule = memberRule(c.member)
      if (rule && list.some((v) => rule.broken(v))) out.push(at(`Member must satisfy constraint: ${rule.words}`))
      if (c.member.kind === 'structure') list.forEach((v, i) => out.push(...problems(v, c.member, `${path}.${i + 1}.member`)))
      return out
    }
    case 'map': {
      const entries = Object.entries(value as object)
      const out: string[] = []
      if (c.min !== undefined && entries.length < c.min) out.push(at(`Member must have length greater than or equal to ${c.min}`))
      if (c.max !== undefined && entries.length > c.max) out.push(at(`Member must have length less than or equal to ${c.max}`))
      const key = memberRule(c.key)
      if (key && entries.some(([k]) => key.broken(k))) out.push(at(`Map keys must satisfy constraint: ${key.words}`))
      const val = memberRule(c.value)
      if (val && entries.some(([, v]) => val.broken(v))) out.push(at(`Map value must satisfy constraint: ${val.words}`))
      return out
    }
    case 'structure':
      return c.fields.flatMap(([name, f]) => problems((value as Record<string, unknown>)[name], f, `${path}.${lowerFirst(name)}`))
  }
}

// ---- the values that break each constraint ----

/** A string of `n` characters that satisfies `pattern` where one of that length can (hash keys are digits, names letters). */
function filler(c: Extract<C, { kind: 'string' }>, n: number): string {
  if (c.pattern?.startsWith('0|')) return `1${'0'.repeat(Math.max(0, n - 1))}`
  if (c.pattern?.includes('arn')) return `arn:aws:kinesis:us-east-1:000000000000:stream/${'a'.repeat(Math.max(1, n - 46))}`
  return 'a'.repeat(n)
}

/** Each way to break `c`, as [what is broken, the value]. */
function breakers(c: C): [string, unknown][] {
  const out: [string, unknown][] = []
  switch (c.kind) {
    case 'string':
      if (c.enum) out.push(['a value outside the enum', 'BOGUS'])
      if (c.pattern) out.push(['a value outside the pattern', c.pattern.startsWith('0|') ? '01' : c.pattern.includes('arn') ? 'arn:nope' : 'a b'])
      if (c.min !== undefined && c.min > 0) out.push(['an empty value', ''])
      // NextToken's maximum is a megabyte: echoed back in the message, not a row.
      if (c.max !== undefined && c.max < 100000) out.push([`a value of ${c.max + 1} characters`, filler(c, c.max + 1)])
      return out
    case 'integer':
      if (c.min !== undefined) out.push([`${c.min - 1}`, c.min - 1])
      if (c.max !== undefined) out.push([`${c.max + 1}`, c.max + 1])
      return out
    case 'list':
      if (c.min !== undefined) out.push(['an empty list', []])
      if (c.max !== undefined) out.push([`a list of ${c.max + 1}`, Array.from({ length: c.max + 1 }, () => c.sample)])
      if (c.member.kind === 'string') for (const [what, v] of breakers(c.member)) out.push([`a list with a member that is ${what}`, [c.sample, v]])
      return out
    case 'map':
      if (c.min !== undefined) out.push(['an empty map', {}])
      if (c.max !== undefined) out.push([`a map of ${c.max + 1}`, Object.fromEntries(Array.from({ length: c.max + 1 }, (_, i) => [`k${i}`, 'v']))])
      out.push(['a key of 129 characters', { ['k'.repeat(129)]: 'v' }], ['an empty key', { '': 'v' }], ['a value of 257 characters', { k: 'v'.repeat(257) }])
      return out
    default:
      return out
  }
}

const valueIn = (body: Record<string, unknown>, path: string[]): Record<string, unknown> =>
  path.reduce<Record<string, unknown>>((o, k) => o[k] as Record<string, unknown>, body)

/** Sets (or removes, with undefined) the member at `path` in a copy of `body`. */
function withMember(body: Record<string, unknown>, path: string[], value: unknown): Record<string, unknown> {
  const copy = structuredClone(body)
  const parent = valueIn(copy, path.slice(0, -1))
  if (value === undefined) delete parent[path[path.length - 1]!]
  else parent[path[path.length - 1]!] = value
  return copy
}

const row = (action: string, name: string, body: Value<unknown>, expect: Row['expect'], source: string): Row => ({ class: CLASS, name: `${action}: ${name}`, request: { action, body }, expect, source })
const validation = (text: Value<string>): Row['expect'] => ({ status: 400, body: typeof text === 'function' ? (f: Fixture) => ({ __type: 'ValidationException', message: text(f) }) : { __type: 'ValidationException', message: text } })

/** Every constrained member of every action, each constraint broken on its own; members of structures one level down (with the structure present). */
function generated(): Row[] {
  const rows: Row[] = []
  for (const [action, a] of Object.entries(ACTIONS)) {
    const source = `${FORMATION}; constraints: ${MODEL}; ${a.order}`
    const base = (f: Fixture) => (typeof a.valid === 'function' ? a.valid(f) : a.valid)
    const visit = (members: Members, at: string[], sample: (f: Fixture) => Record<string, unknown>) => {
      for (const [name, c] of members) {
        const path = [...at, name]
        const shownPath = path.map(lowerFirst).join('.')
        const cases: [string, unknown][] = [...(c.required ? [['missing', undefined] as [string, unknown]] : []), ...breakers(c)]
        for (const [what, value] of cases) {
          // A list of 501 entries is shown by class and identity: its message is a pattern.
          const big = c.kind === 'list' && c.member.kind === 'structure' && Array.isArray(value) && value.length > 0
          const expected = big ? null : message(problems(value, c, shownPath))
          rows.push(row(action, `${shownPath} ${what === 'missing' ? 'missing' : `as ${what}`} is a ValidationException naming it`,
            (f: Fixture) => withMember(sample(f), path, value),
            expected === null ? { status: 400 } : validation(expected), source))
        }
        if (c.kind === 'structure') {
          const structure = c
          visit(c.fields, path, (f) => withMember(sample(f), path, structuredClone(structure.sample)))
        }
        if (c.kind === 'list' && c.member.kind === 'structure') {
          const entry = c.member
          for (const [field, fc] of entry.fields) {
            const cases2: [string, unknown][] = [...(fc.required ? [['missing', undefined] as [string, unknown]] : []), ...breakers(fc)]
            for (const [what, value] of cases2) {
              const good = structuredClone(c.sample) as Record<string, unknown>
              const bad = withMember(good, [field], value)
              const memberPath = `${shownPath}.2.member.${lowerFirst(field)}`
              const expected = message(problems(bad[field], fc, memberPath))
              rows.push(row(action, `the second entry's ${lowerFirst(field)} ${what === 'missing' ? 'missing' : `as ${what}`} is named at ${memberPath}`,
                (f: Fixture) => withMember(sample(f), path, [c.sample, bad]), validation(expected), source))
            }
          }
        }
      }
    }
    visit(a.members, [], base)
  }
  return rows
}

/** The 501-entry PutRecords row's message: each entry printed by class and identity, as AWS prints it. */
function bigList(rows: Row[]): Row[] {
  return rows.map((r) => {
    if (r.expect.body !== undefined || r.expect.match !== undefined) return r
    return {
      ...r,
      name: `${r.name}, its entries printed by class`,
      expect: {
        status: 400,
        match: {
          __type: 'ValidationException',
          message: /^1 validation error detected: Value '\[(com\.amazonaws\.kinesis\.v20131202\.PutRecordsRequestEntry@[0-9a-f]{1,8}(, |\]))+' at 'records' failed to satisfy constraint: Member must have length less than or equal to 500$/,
        },
      },
      source: `${r.source}; the entries printed as Java prints an object: ${KINESALITE} validations/putRecords.js (memberStr)`,
    }
  })
}

// ---- hand-written rows: AWS's recorded answers to several errors at once, the cap, and the checks after the constraints ----

const name129 = 'a'.repeat(129)
const pattern = (path: string, p: string, v = '') => violation(`'${v}'`, path, `Member must satisfy regular expression pattern: ${p}`)
const tooShort = (path: string, n = 1, v = '') => violation(`'${v}'`, path, `Member must have length greater than or equal to ${n}`)
const nul = (path: string) => violation('null', path, 'Member must not be null')
const NAME = '[a-zA-Z0-9_.-]+'
const recorded = (file: string, note = '') => `AWS's answer recorded in ${KINESALITE} test/${file}.js${note ? `; ${note}` : ''}`
const invalidArgument = (message: Value<string>): Row['expect'] => ({ status: 400, body: typeof message === 'function' ? (f: Fixture) => ({ __type: 'InvalidArgumentException', message: message(f) }) : { __type: 'InvalidArgumentException', message } })

const written: Row[] = [
  row('PutRecord', 'every member empty is five errors in AWS\'s order', { StreamName: '', PartitionKey: '', Data: '', ExplicitHashKey: '', SequenceNumberForOrdering: '' },
    validation(message([pattern('sequenceNumberForOrdering', '0|([1-9]\\d{0,128})'), tooShort('partitionKey'), pattern('explicitHashKey', '0|([1-9]\\d{0,38})'), pattern('streamName', NAME), tooShort('streamName')])),
    recorded('putRecord', '"should return ValidationException for empty StreamName"')),
  row('PutRecord', 'an empty request is partitionKey and data null (StreamName is optional in today\'s model)', {},
    validation(message([nul('partitionKey'), nul('data')])), recorded('putRecord', "without 'streamName', which the model no longer requires")),
  row('PutRecord', 'a long StreamName and PartitionKey and an empty ExplicitHashKey, in AWS\'s order', { StreamName: name129, PartitionKey: 'a'.repeat(257), Data: '', ExplicitHashKey: '' },
    validation(message([violation(`'${'a'.repeat(257)}'`, 'partitionKey', 'Member must have length less than or equal to 256'), pattern('explicitHashKey', '0|([1-9]\\d{0,38})'), violation(`'${name129}'`, 'streamName', 'Member must have length less than or equal to 128')])),
    recorded('putRecord', '"should return ValidationException for long StreamName" (without its Data of 51201 bytes, a limit AWS has since raised)')),
  row('PutRecords', 'an empty StreamName and no records, in AWS\'s order', { StreamName: '', Records: [] },
    validation(message([violation("'[]'", 'records', 'Member must have length greater than or equal to 1'), pattern('streamName', NAME), tooShort('streamName')])), recorded('putRecords')),
  row('PutRecords', 'an empty request is records null', {}, validation(message([nul('records')])), recorded('putRecords', "without 'streamName'")),
  row('PutRecords', 'a long StreamName with a good record is "1 validation error"', { StreamName: name129, Records: [{ PartitionKey: 'a', Data: '' }] },
    validation(message([violation(`'${name129}'`, 'streamName', 'Member must have length less than or equal to 128')])), recorded('putRecords')),
  row('PutRecords', 'twelve entries with empty partition keys show the first ten problems, "10 validation errors"',
    { StreamName: 'never-created', Records: Array.from({ length: 12 }, () => ({ PartitionKey: '', Data: 'YQ==' })) },
    validation(message(Array.from({ length: 10 }, (_, i) => tooShort(`records.${i + 1}.member.partitionKey`)))), `${FORMATION} (errors.length >= 10 stops the checks)`),
  row('PutRecords', 'an entry with every member wrong lists them in AWS\'s entry order', { StreamName: 'never-created', Records: [{ PartitionKey: '', ExplicitHashKey: 'x' }] },
    validation(message([tooShort('records.1.member.partitionKey'), pattern('records.1.member.explicitHashKey', '0|([1-9]\\d{0,38})', 'x'), nul('records.1.member.data')])),
    `${KINESALITE} validations/putRecords.js (member order PartitionKey, ExplicitHashKey, Data); ${FORMATION}`),
  row('GetShardIterator', 'an empty request is shardId and shardIteratorType null', {}, validation(message([nul('shardId'), nul('shardIteratorType')])), recorded('getShardIterator', "without 'streamName'")),
  row('GetShardIterator', 'every member empty is six errors in AWS\'s order, the enum as AWS lists it', { StreamName: '', ShardIteratorType: '', ShardId: '', StartingSequenceNumber: '' },
    validation(message([pattern('shardId', NAME), tooShort('shardId'), violation("''", 'shardIteratorType', `Member must satisfy enum value set: [${ITERATOR_TYPES.join(', ')}]`),
      pattern('startingSequenceNumber', '0|([1-9]\\d{0,128})'), pattern('streamName', NAME), tooShort('streamName')])), recorded('getShardIterator')),
  row('GetShardIterator', 'a long StreamName and ShardId', { StreamName: name129, ShardId: name129, ShardIteratorType: 'LATEST' },
    validation(message([violation(`'${name129}'`, 'shardId', 'Member must have length less than or equal to 128'), violation(`'${name129}'`, 'streamName', 'Member must have length less than or equal to 128')])), recorded('getShardIterator')),
  row('ListShards', 'empty and zero members in AWS\'s order', { StreamName: '', MaxResults: 0, ExclusiveStartShardId: '' },
    validation(message([pattern('exclusiveStartShardId', NAME), tooShort('exclusiveStartShardId'), violation("'0'", 'maxResults', 'Member must have value greater than or equal to 1'), pattern('streamName', NAME), tooShort('streamName')])),
    recorded('listShards', 'its Limit is MaxResults in the model; order from validations/listShards.js')),
  row('ListShards', 'long members in AWS\'s order', { StreamName: name129, MaxResults: 100000, ExclusiveStartShardId: name129 },
    validation(message([violation(`'${name129}'`, 'exclusiveStartShardId', 'Member must have length less than or equal to 128'), violation("'100000'", 'maxResults', 'Member must have value less than or equal to 10000'),
      violation(`'${name129}'`, 'streamName', 'Member must have length less than or equal to 128')])), recorded('listShards')),
  row('DescribeStream', 'empty and zero members in AWS\'s order', { StreamName: '', Limit: 0, ExclusiveStartShardId: '' },
    validation(message([violation("'0'", 'limit', 'Member must have value greater than or equal to 1'), pattern('exclusiveStartShardId', NAME), tooShort('exclusiveStartShardId'), pattern('streamName', NAME), tooShort('streamName')])),
    `${KINESALITE} validations/describeStream.js; ${FORMATION}`),
  row('ListTagsForStream', 'empty and zero members in AWS\'s order', { StreamName: '', Limit: 0, ExclusiveStartTagKey: '' },
    validation(message([violation("'0'", 'limit', 'Member must have value greater than or equal to 1'), tooShort('exclusiveStartTagKey'), pattern('streamName', NAME), tooShort('streamName')])),
    `${KINESALITE} validations/listTagsForStream.js; ${FORMATION}`),
  row('CreateStream', 'an empty request is streamName null (ShardCount is optional in today\'s model)', {}, validation(message([nul('streamName')])), recorded('createStream', "without 'shardCount'")),
  row('CreateStream', 'an empty name and no shards, in AWS\'s order', { StreamName: '', ShardCount: 0 },
    validation(message([violation("'0'", 'shardCount', 'Member must have value greater than or equal to 1'), pattern('streamName', NAME), tooShort('streamName')])), recorded('createStream')),
  row('CreateStream', 'too many shards and a long name', { StreamName: name129, ShardCount: 100001 },
    validation(message([violation("'100001'", 'shardCount', 'Member must have value less than or equal to 100000'), violation(`'${name129}'`, 'streamName', 'Member must have length less than or equal to 128')])), recorded('createStream')),
  row('UpdateShardCount', 'an empty request is scalingType and targetShardCount null', {}, validation(message([nul('scalingType'), nul('targetShardCount')])), recorded('updateShardCount', "without 'streamName'")),
  row('UpdateShardCount', 'empty and zero members in AWS\'s order', { StreamName: '', ScalingType: '', TargetShardCount: 0 },
    validation(message([violation("''", 'scalingType', 'Member must satisfy enum value set: [UNIFORM_SCALING]'), pattern('streamName', NAME), tooShort('streamName'), violation("'0'", 'targetShardCount', 'Member must have value greater than or equal to 1')])),
    recorded('updateShardCount', 'order from validations/updateShardCount.js')),
  row('UpdateShardCount', 'a TargetShardCount over 100000', { StreamName: 'never-created', ScalingType: 'UNIFORM_SCALING', TargetShardCount: 100001 },
    validation(message([violation("'100001'", 'targetShardCount', 'Member must have value less than or equal to 100000')])), recorded('updateShardCount')),
  row('AddTagsToStream', 'an empty request is tags null', {}, validation(message([nul('tags')])), recorded('addTagsToStream', "without 'streamName'")),
  row('AddTagsToStream', 'an empty name and no tags, in AWS\'s order', { StreamName: '', Tags: {} },
    validation(message([violation("'{}'", 'tags', 'Member must have length greater than or equal to 1'), pattern('streamName', NAME), tooShort('streamName')])), recorded('addTagsToStream')),
  row('RemoveTagsFromStream', 'an empty name and no keys, in AWS\'s order', { StreamName: '', TagKeys: [] },
    validation(message([violation("'[]'", 'tagKeys', 'Member must have length greater than or equal to 1'), pattern('streamName', NAME), tooShort('streamName')])), recorded('removeTagsFromStream')),
  row('RemoveTagsFromStream', 'a long key among good ones is one constraint on the list', { StreamName: 'never-created', TagKeys: ['a', name129, 'b'] },
    validation(message([violation(`'[a, ${name129}, b]'`, 'tagKeys', 'Member must satisfy constraint: [Member must have length less than or equal to 128, Member must have length greater than or equal to 1]')])), recorded('removeTagsFromStream')),
  row('MergeShards', 'an empty request is shardToMerge and adjacentShardToMerge null', {}, validation(message([nul('shardToMerge'), nul('adjacentShardToMerge')])), `${KINESALITE} validations/mergeShards.js; ${FORMATION}`),
  row('SplitShard', 'an empty request is newStartingHashKey and shardToSplit null', {}, validation(message([nul('newStartingHashKey'), nul('shardToSplit')])), `${KINESALITE} validations/splitShard.js; ${FORMATION}`),
  row('IncreaseStreamRetentionPeriod', 'an empty name and no hours, in AWS\'s order', { StreamName: '' },
    validation(message([nul('retentionPeriodHours'), pattern('streamName', NAME), tooShort('streamName')])), `${KINESALITE} validations/increaseStreamRetentionPeriod.js; ${FORMATION}`),
  row('SubscribeToShard', 'an empty request is every required member null, in the model\'s order', {},
    validation(message([nul('consumerARN'), nul('shardId'), nul('startingPosition')])), `${FORMATION}; ${byModel}`),
  row('RegisterStreamConsumer', 'an empty request is streamARN and consumerName null', {}, validation(message([nul('streamARN'), nul('consumerName')])), `${FORMATION}; ${byModel}`),

  // The checks AWS makes once the constraints pass: InvalidArgumentException, never a validation message.
  row('PutRecord', 'an ExplicitHashKey of 2^128 is out of range', (f) => ({ StreamName: f.stream, PartitionKey: 'a', Data: '', ExplicitHashKey: (2n ** 128n).toString() }),
    invalidArgument(`Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. Specified value was ${(2n ** 128n).toString()}`), recorded('putRecord')),
  row('PutRecords', 'an entry with an ExplicitHashKey of 2^128 is out of range', (f) => ({ StreamName: f.stream, Records: [{ PartitionKey: 'a', Data: '', ExplicitHashKey: (2n ** 128n).toString() }] }),
    invalidArgument(`Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. Specified value was ${(2n ** 128n).toString()}`), `${KINESALITE} actions/putRecords.js`),
  row('PutRecord', 'a constraint broken with an out-of-range ExplicitHashKey is the constraint\'s message', { StreamName: 'a b', PartitionKey: 'a', Data: '', ExplicitHashKey: (2n ** 128n).toString() },
    validation(message([pattern('streamName', NAME, 'a b')])), `${FORMATION} (the constraints are checked before the action's own checks)`),
  ...(['AT_SEQUENCE_NUMBER', 'AFTER_SEQUENCE_NUMBER'] as const).map((type) => row('GetShardIterator', `${type} without a StartingSequenceNumber`, (f) => ({ StreamName: f.stream, ShardId: 'shardId-0', ShardIteratorType: type }),
    invalidArgument(`Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and StartingSequenceNumber or (2) TRIM_HORIZON or LATEST and no StartingSequenceNumber. Request specified ${type} and no StartingSequenceNumber.`), recorded('getShardIterator'))),
  ...(['LATEST', 'TRIM_HORIZON'] as const).map((type) => row('GetShardIterator', `${type} with a StartingSequenceNumber`, (f) => ({ StreamName: f.stream, ShardId: 'shardId-0', ShardIteratorType: type, StartingSequenceNumber: '5' }),
    invalidArgument(`Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and StartingSequenceNumber or (2) TRIM_HORIZON or LATEST and no StartingSequenceNumber. Request specified ${type} and also a StartingSequenceNumber.`), recorded('getShardIterator'))),
  row('GetShardIterator', 'AT_TIMESTAMP without a Timestamp', (f) => ({ StreamName: f.stream, ShardId: 'shardId-0', ShardIteratorType: 'AT_TIMESTAMP' }),
    invalidArgument('Must specify timestampInMillis parameter for iterator of type AT_TIMESTAMP. Current request has no timestamp parameter.'), recorded('getShardIterator')),
  row('ListShards', 'neither NextToken nor StreamName', {}, invalidArgument('Either NextToken or StreamName should be provided.'), `${KINESALITE} actions/listShards.js`),
  row('ListShards', 'NextToken and StreamName together', (f) => ({ StreamName: f.stream, NextToken: 'abc' }), invalidArgument('NextToken and StreamName cannot be provided together.'), `${KINESALITE} actions/listShards.js`),
  row('IncreaseStreamRetentionPeriod', 'a period under 24 hours is too short', (f) => ({ StreamName: f.stream, RetentionPeriodHours: 23 }),
    invalidArgument('Minimum allowed retention period is 24 hours. Requested retention period (23 hours) is too short.'), `${KINESALITE} actions/increaseStreamRetentionPeriod.js`),
  row('DecreaseStreamRetentionPeriod', 'a period under 24 hours is too short', (f) => ({ StreamName: f.stream, RetentionPeriodHours: 1 }),
    invalidArgument('Minimum allowed retention period is 24 hours. Requested retention period (1 hours) is too short.'), `${KINESALITE} actions/decreaseStreamRetentionPeriod.js`),
  row('AddTagsToStream', 'a tag with a character AWS does not allow', (f) => ({ StreamName: f.stream, Tags: { 'abc;def': 'v' } }),
    invalidArgument('Some tags contain invalid characters. Valid characters: Unicode letters, digits, white space, _ . / = + - % @.'), `${KINESALITE} actions/addTagsToStream.js`),
]

export const rows: Row[] = [...bigList(generated()), ...written]
