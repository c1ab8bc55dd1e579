/**
 * Firehose's prefix templates: timestamps in UTC with DateTimeFormatter patterns, partition keys
 * from jq or the transform, the error output type, a random string that a redelivered batch gets
 * again, the default `yyyy/MM/dd/HH/`, and object keys named by the batch.
 */
import t from 'tap'
import {
  batchRandomString, checkPrefix, defaultTimePrefix, FormatError, objectKey, objectPrefix, prefixUses, resolvePrefix,
} from '../../relay/delivery/format/index.js'
import type { BatchId } from '../../relay/delivery/types.js'

const batch: BatchId = { deliveryStream: 'orders', shardId: 'shardId-000000000001', firstSequence: '49500000000000000001', lastSequence: '49500000000000000099' }
// 2024-02-29T07:08:09.045Z: a leap day, single-digit fields everywhere, so padding shows.
const at = Date.UTC(2024, 1, 29, 7, 8, 9, 45)
const values = { arrivalMs: at, partitionKeys: { customer: 'c-17', region: 'eu' }, batch }

t.test('timestamps follow the DateTimeFormatter pattern, in UTC', async (t) => {
  t.equal(resolvePrefix('logs/!{timestamp:yyyy/MM/dd/HH}/', values), 'logs/2024/02/29/07/')
  t.equal(resolvePrefix("!{timestamp:yyyy-MM-dd'T'HH:mm:ss.SSS}", values), '2024-02-29T07:08:09.045')
  t.equal(resolvePrefix("!{timestamp:'year='yyyy/'month='M/'day='d}/", values), 'year=2024/month=2/day=29/')
  t.equal(resolvePrefix('!{timestamp:yy MMM MMMM D DDD}', values), '24 Feb February 60 060')
  t.equal(resolvePrefix("!{timestamp:'it''s' HH}", values), "it's 07")
})

t.test('partition keys come from jq or the transform; one the record lacks is a typed error', async (t) => {
  t.equal(resolvePrefix('by/!{partitionKeyFromQuery:customer}/!{partitionKeyFromLambda:region}/', values), 'by/c-17/eu/')
  const err = t.throws(() => resolvePrefix('by/!{partitionKeyFromQuery:device}/', values)) as FormatError
  t.equal(err.code, 'PARTITION_KEY_MISSING')
  t.match(err.message, /"device"/)
  t.throws(() => resolvePrefix('!{partitionKeyFromLambda:toString}/', values), { code: 'PARTITION_KEY_MISSING' }, 'inherited properties are not keys')
})

t.test('the error output type names the failure, and only where one is given', async (t) => {
  t.equal(resolvePrefix('errors/!{firehose:error-output-type}/', { ...values, errorOutputType: 'format-conversion-failed' }), 'errors/format-conversion-failed/')
  t.throws(() => resolvePrefix('errors/!{firehose:error-output-type}/', values), { code: 'PREFIX_INVALID' })
})

t.test('the random string is 11 characters, the same for a redelivered batch and different for another batch', async (t) => {
  const first = resolvePrefix('x/!{firehose:random-string}/', values)
  t.match(first, /^x\/[0-9a-z]{11}\/$/)
  t.equal(resolvePrefix('x/!{firehose:random-string}/', { ...values, arrivalMs: at + 3_600_000 }), first, 'depends on the batch only')
  t.not(batchRandomString({ ...batch, lastSequence: '49500000000000000100' }), batchRandomString(batch))
  t.not(batchRandomString({ ...batch, shardId: 'shardId-000000000002' }), batchRandomString(batch))
})

t.test('without a timestamp expression or dynamic partitioning, yyyy/MM/dd/HH/ of the arrival time is appended', async (t) => {
  t.equal(objectPrefix('raw/', values, false), 'raw/2024/02/29/07/')
  t.equal(objectPrefix('', values, false), '2024/02/29/07/')
  t.equal(objectPrefix('t/!{timestamp:yyyy}/', values, false), 't/2024/', 'a timestamp expression replaces the default')
  t.equal(objectPrefix('p/!{partitionKeyFromQuery:customer}/', values, true), 'p/c-17/', 'dynamic partitioning replaces the default')
  t.equal(defaultTimePrefix('raw/', Date.UTC(1999, 11, 31, 23, 59, 59), false), 'raw/1999/12/31/23/')
  t.equal(defaultTimePrefix('raw/', at, true), 'raw/')
})

t.test('a bad template is refused up front, naming the expression', async (t) => {
  const cases: [string, RegExp][] = [
    ['a/!{timestamp:yyyy', /!\{timestamp:yyyy is not closed/],
    ['a/!{time:yyyy}/', /!\{time:yyyy\} has the unknown namespace "time"/],
    ['a/!{timestamp:yyyy-QQ}/', /!\{timestamp:yyyy-QQ\} uses the pattern letter 'Q'/],
    ['a/!{timestamp:yyyyy}/', /'yyyyy'/],
    ["a/!{timestamp:'open}/", /unclosed quote/],
    ['a/!{timestamp:}/', /empty pattern/],
    ['a/!{partitionKeyFromQuery:}/', /names no key/],
    ['a/!{firehose:nonsense}/', /!\{firehose:nonsense\} is not firehose:error-output-type/],
    ['a/!{customer}/', /has no namespace/],
  ]
  for (const [template, message] of cases) {
    const err = t.throws(() => checkPrefix(template), `refuses ${template}`) as FormatError
    t.equal(err.code, 'PREFIX_INVALID')
    t.match(err.message, message)
    t.match(err.message, template.slice(0, 4), 'names the template')
  }
  t.doesNotThrow(() => checkPrefix('plain/prefix/'))
  t.doesNotThrow(() => checkPrefix('!{partitionKeyFromQuery:a}/!{timestamp:yyyy}/!{firehose:random-string}'))
})

t.test('prefixUses lists what a template needs', async (t) => {
  t.same(prefixUses('!{partitionKeyFromQuery:a}/!{partitionKeyFromLambda:b}/!{timestamp:HH}'), {
    timestamp: true, partitionKeys: [{ source: 'query', key: 'a' }, { source: 'lambda', key: 'b' }], errorOutputType: false, randomString: false,
  })
})

t.test('an object key is the prefix, then stream, shard, first and last sequence number, then the extension', async (t) => {
  t.equal(objectKey('raw/2024/02/29/07/', batch, '.gz'), 'raw/2024/02/29/07/orders-shardId-000000000001-49500000000000000001-49500000000000000099.gz')
  t.equal(objectKey('', batch, ''), 'orders-shardId-000000000001-49500000000000000001-49500000000000000099')
})
