/**
 * The Kinesis Video API through the real AWS SDK clients (@aws-sdk/client-kinesis-video and
 * -archived-media, endpoint overridden, signed with the relay's access keys): streams' lifecycle,
 * retention, tags, GetDataEndpoint, ListFragments by producer and server time with paging over
 * fragments a device sent over MQTT, retention enforced on the relay's clock, and errors as AWS
 * answers them.
 */
import t, { type Test } from 'tap'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import {
  CreateStreamCommand, DeleteStreamCommand, DescribeStreamCommand, GetDataEndpointCommand, KinesisVideoClient, ListStreamsCommand,
  ListTagsForStreamCommand, TagStreamCommand, UntagStreamCommand, UpdateDataRetentionCommand, UpdateStreamCommand, paginateListStreams,
} from '@aws-sdk/client-kinesis-video'
import { ListFragmentsCommand, paginateListFragments, type Fragment } from '@aws-sdk/client-kinesis-video-archived-media'
import type { Relay } from '../../relay/relay.js'
import { manualClock, testRelay, type TestClock } from '../helpers/relay.js'
import { chunksOf, clip, failure, videoDevice, videoRelay } from './video-fixtures.js'

const KEY = { accessKeyId: 'AKIDVIDEOTEST', secretAccessKey: 'video-secret' }

function videoFiles(relay: Relay): string[] {
  try {
    return readdirSync(join(relay.config.dataDir, 'video'), { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name)
  } catch {
    return []
  }
}

t.test('streams are created, described, listed, updated, tagged and deleted as AWS does', async (t) => {
  const { relay, video } = await videoRelay(t, KEY)
  const created = await video.send(new CreateStreamCommand({ StreamName: 'door', DataRetentionInHours: 24, DeviceName: 'cam-7', MediaType: 'video/h264', Tags: { site: 'north' } }))
  t.match(created.StreamARN, /^arn:aws:kinesisvideo:us-east-1:000000000000:stream\/door\/\d{13}$/)
  const { StreamInfo: info } = await video.send(new DescribeStreamCommand({ StreamName: 'door' }))
  t.match(info, { StreamName: 'door', StreamARN: created.StreamARN, Status: 'ACTIVE', DataRetentionInHours: 24, DeviceName: 'cam-7', MediaType: 'video/h264', KmsKeyId: /alias\/aws\/kinesisvideo$/ })
  t.ok(info!.CreationTime instanceof Date && Math.abs(info!.CreationTime.getTime() - Date.now()) < 60_000, 'CreationTime is a date')
  t.equal((await video.send(new DescribeStreamCommand({ StreamARN: created.StreamARN }))).StreamInfo!.StreamName, 'door', 'described by ARN')
  t.match(await failure(video.send(new CreateStreamCommand({ StreamName: 'door' }))), { name: 'ResourceInUseException', status: 400 })

  for (const name of ['drive', 'dock', 'yard']) await video.send(new CreateStreamCommand({ StreamName: name }))
  const all = (await video.send(new ListStreamsCommand({}))).StreamInfoList!.map((s) => s.StreamName)
  t.same(all, ['dock', 'door', 'drive', 'yard'])
  const pages: string[][] = []
  for await (const page of paginateListStreams({ client: video, pageSize: 1 }, { StreamNameCondition: { ComparisonOperator: 'BEGINS_WITH', ComparisonValue: 'd' } })) pages.push(page.StreamInfoList!.map((s) => s.StreamName!))
  t.same(pages, [['dock'], ['door'], ['drive']], 'BEGINS_WITH, one stream a page, NextToken to the end')
  t.equal((await video.send(new DescribeStreamCommand({ StreamName: 'drive' }))).StreamInfo!.DataRetentionInHours, 0, 'retention defaults to 0 (the live buffer)')

  const version = info!.Version!
  await video.send(new UpdateDataRetentionCommand({ StreamName: 'door', CurrentVersion: version, Operation: 'INCREASE_DATA_RETENTION', DataRetentionChangeInHours: 48 }))
  const after = (await video.send(new DescribeStreamCommand({ StreamName: 'door' }))).StreamInfo!
  t.equal(after.DataRetentionInHours, 72)
  t.not(after.Version, version, 'the version changes with each update')
  t.match(await failure(video.send(new UpdateDataRetentionCommand({ StreamName: 'door', CurrentVersion: version, Operation: 'DECREASE_DATA_RETENTION', DataRetentionChangeInHours: 1 }))), { name: 'VersionMismatchException', status: 400 })
  t.match(await failure(video.send(new UpdateDataRetentionCommand({ StreamName: 'door', CurrentVersion: after.Version, Operation: 'DECREASE_DATA_RETENTION', DataRetentionChangeInHours: 73 }))), { name: 'InvalidArgumentException', message: /cannot decrease by 73/ })
  await video.send(new UpdateDataRetentionCommand({ StreamARN: created.StreamARN, CurrentVersion: after.Version, Operation: 'DECREASE_DATA_RETENTION', DataRetentionChangeInHours: 72 }))
  const zero = (await video.send(new DescribeStreamCommand({ StreamName: 'door' }))).StreamInfo!
  t.equal(zero.DataRetentionInHours, 0, 'decreased to 0')
  await video.send(new UpdateStreamCommand({ StreamName: 'door', CurrentVersion: zero.Version, MediaType: 'video/h265' }))
  t.equal((await video.send(new DescribeStreamCommand({ StreamName: 'door' }))).StreamInfo!.MediaType, 'video/h265', 'UpdateStream')

  await video.send(new TagStreamCommand({ StreamName: 'door', Tags: { owner: 'ops', site: 'south' } }))
  t.same((await video.send(new ListTagsForStreamCommand({ StreamARN: created.StreamARN }))).Tags, { owner: 'ops', site: 'south' })
  await video.send(new UntagStreamCommand({ StreamName: 'door', TagKeyList: ['site'] }))
  t.same((await video.send(new ListTagsForStreamCommand({ StreamName: 'door' }))).Tags, { owner: 'ops' })
  const many = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`k${i}`, 'v']))
  t.match(await failure(video.send(new TagStreamCommand({ StreamName: 'door', Tags: many }))), { name: 'TagsPerResourceExceededLimitException' })

  for (const APIName of ['PUT_MEDIA', 'GET_MEDIA', 'LIST_FRAGMENTS', 'GET_HLS_STREAMING_SESSION_URL', 'GET_CLIP', 'GET_IMAGES'] as const) {
    t.equal((await video.send(new GetDataEndpointCommand({ StreamName: 'door', APIName }))).DataEndpoint, relay.endpoint, `${APIName}: the relay's own URL`)
  }

  await video.send(new DeleteStreamCommand({ StreamARN: created.StreamARN, CurrentVersion: (await video.send(new DescribeStreamCommand({ StreamName: 'door' }))).StreamInfo!.Version }))
  t.match(await failure(video.send(new DescribeStreamCommand({ StreamName: 'door' }))), { name: 'ResourceNotFoundException', status: 404 })
  t.match(await failure(video.send(new DeleteStreamCommand({ StreamARN: created.StreamARN }))), { name: 'ResourceNotFoundException', status: 404 })
  await video.send(new CreateStreamCommand({ StreamName: 'door' }))
  t.not((await video.send(new DescribeStreamCommand({ StreamName: 'door' }))).StreamInfo!.StreamARN, created.StreamARN, 'a stream created again has an ARN of its own')
  const metrics = await (await fetch(`${relay.endpoint}/metrics`)).text()
  t.match(metrics, /tributary_video_api_requests_total\{action="CreateStream",outcome="ok"\} 5/)
  t.match(metrics, /tributary_video_api_requests_total\{action="CreateStream",outcome="ResourceInUseException"\} 1/)
})

t.test('bad requests and bad signatures are refused with AWS\'s error types', async (t) => {
  const { relay, video } = await videoRelay(t, KEY)
  t.match(await failure(video.send(new CreateStreamCommand({ StreamName: 'bad name!' }))), { name: 'InvalidArgumentException', status: 400, message: /at 'streamName' failed to satisfy constraint: Member must satisfy regular expression pattern/ })
  t.match(await failure(video.send(new CreateStreamCommand({ StreamName: 'x'.repeat(257) }))), { name: 'InvalidArgumentException', message: /length less than or equal to 256/ })
  t.match(await failure(video.send(new CreateStreamCommand({ StreamName: 'neg', DataRetentionInHours: -1 }))), { name: 'InvalidArgumentException' })
  t.match(await failure(video.send(new DescribeStreamCommand({}))), { name: 'InvalidArgumentException', message: /StreamName or StreamARN/ })
  t.match(await failure(video.send(new GetDataEndpointCommand({ StreamName: 'none', APIName: 'GET_MEDIA' }))), { name: 'ResourceNotFoundException', status: 404 })
  t.match(await failure(video.send(new GetDataEndpointCommand({ StreamName: 'none', APIName: 'NOPE' as 'GET_MEDIA' }))), { name: 'InvalidArgumentException', message: /enum value set/ })
  const wrongKey = new KinesisVideoClient({ endpoint: relay.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'AKIDOTHER', secretAccessKey: 'x' }, maxAttempts: 1 })
  const wrongSecret = new KinesisVideoClient({ endpoint: relay.endpoint, region: 'us-east-1', credentials: { ...KEY, secretAccessKey: 'wrong' }, maxAttempts: 1 })
  const wrongRegion = new KinesisVideoClient({ endpoint: relay.endpoint, region: 'eu-west-1', credentials: KEY, maxAttempts: 1 })
  t.teardown(() => { wrongKey.destroy(); wrongSecret.destroy(); wrongRegion.destroy() })
  t.match(await failure(wrongKey.send(new ListStreamsCommand({}))), { name: 'UnrecognizedClientException', status: 400 })
  t.match(await failure(wrongSecret.send(new ListStreamsCommand({}))), { name: 'InvalidSignatureException', status: 400 })
  t.match(await failure(wrongRegion.send(new ListStreamsCommand({}))), { name: 'InvalidSignatureException', message: /region/ })
  // No signature: AWS's REST-JSON error form, the type in a header and the message in the body.
  const unsigned = await fetch(`${relay.endpoint}/listStreams`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
  t.equal(unsigned.status, 403)
  t.equal(unsigned.headers.get('x-amzn-errortype'), 'MissingAuthenticationTokenException')
  t.same(await unsigned.json(), { message: 'Missing Authentication Token' })
  t.equal(relay.video.streams.list().length, 0, 'nothing was created')
})

t.test('REST-JSON errors and bodies without access keys', async (t) => {
  const relay = await testRelay(t)
  const post = (path: string, body: string) => fetch(`${relay.endpoint}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
  const missing = await post('/describeStream', '{"StreamName":"nowhere"}')
  t.equal(missing.status, 404)
  t.equal(missing.headers.get('x-amzn-errortype'), 'ResourceNotFoundException')
  t.match(await missing.json(), { message: /nowhere/ })
  const notJson = await post('/createStream', '{"StreamName":')
  t.equal(notJson.status, 400)
  t.equal(notJson.headers.get('x-amzn-errortype'), 'SerializationException')
  const wrongType = await post('/createStream', '{"StreamName":5}')
  t.equal(wrongType.headers.get('x-amzn-errortype'), 'SerializationException')
  const list = await post('/createStream', '[]')
  t.equal(list.headers.get('x-amzn-errortype'), 'SerializationException')
  t.equal((await post('/createStream', '{"StreamName":"ok"}')).status, 200)
  t.equal((await fetch(`${relay.endpoint}/createStream`)).status, 404, 'GET is not an action')
})

/** A device sends an init segment and `count` fragments, the relay's clock moving `stepMs` between fragments. */
async function ingest(t: Test, relay: Relay, clock: TestClock, stream: string, count: number, stepMs = 1000, session = 1n) {
  const d = await videoDevice(t, relay.mqttPort, `cam-${stream}`)
  const c = clip(6, 1)
  await d.send(stream, chunksOf(session, 0, c.init))
  await d.until(0, 'PERSISTED', session)
  const numbers: string[] = []
  for (let i = 1; i <= count; i++) {
    clock.advance(stepMs)
    // Producer times run 2 s apart from 1_800_000_000_000 (the fixture's), so they differ from server times.
    await d.send(stream, chunksOf(session, i, c.fragments[(i - 1) % c.fragments.length]!, { producerTimeMs: 1_800_000_000_000 + i * 2000 }))
    numbers.push((await d.until(i, 'PERSISTED', session)).fragmentNumber!)
  }
  return numbers
}

t.test('ListFragments lists what devices sent, by producer or server time, and pages as AWS pages', async (t) => {
  const clock = manualClock(1_900_000_000_000)
  const { relay, archive } = await videoRelay(t, KEY, clock)
  const numbers = await ingest(t, relay, clock, 'lobby', 6)
  const all = (await archive.send(new ListFragmentsCommand({ StreamName: 'lobby' }))).Fragments!
  t.same(all.map((f) => f.FragmentNumber), numbers, 'every fragment, in ingest order')
  const c = clip(6, 1)
  t.match(all[0], { FragmentSizeInBytes: c.fragments[0]!.length, FragmentLengthInMilliseconds: 1000 })
  t.same(all.map((f) => f.ProducerTimestamp!.getTime()), [1, 2, 3, 4, 5, 6].map((i) => 1_800_000_000_000 + i * 2000), 'producer timestamps as the device stamped them')
  t.same(all.map((f) => f.ServerTimestamp!.getTime()), [1, 2, 3, 4, 5, 6].map((i) => 1_900_000_000_000 + i * 1000), 'server timestamps on the relay\'s clock')

  const byProducer = (await archive.send(new ListFragmentsCommand({
    StreamName: 'lobby',
    FragmentSelector: { FragmentSelectorType: 'PRODUCER_TIMESTAMP', TimestampRange: { StartTimestamp: new Date(1_800_000_004_000), EndTimestamp: new Date(1_800_000_008_000) } },
  }))).Fragments!
  t.same(byProducer.map((f) => f.FragmentNumber), numbers.slice(1, 4), 'a producer-time range, both ends included')
  const byServer = (await archive.send(new ListFragmentsCommand({
    StreamName: 'lobby',
    FragmentSelector: { FragmentSelectorType: 'SERVER_TIMESTAMP', TimestampRange: { StartTimestamp: new Date(1_900_000_004_500), EndTimestamp: new Date(1_900_000_060_000) } },
  }))).Fragments!
  t.same(byServer.map((f) => f.FragmentNumber), numbers.slice(4), 'a server-time range')
  const none = (await archive.send(new ListFragmentsCommand({
    StreamName: 'lobby',
    FragmentSelector: { FragmentSelectorType: 'PRODUCER_TIMESTAMP', TimestampRange: { StartTimestamp: new Date(1_900_000_000_000), EndTimestamp: new Date(1_900_000_060_000) } },
  }))).Fragments!
  t.same(none, [], 'producer time is not server time')

  const first = await archive.send(new ListFragmentsCommand({ StreamName: 'lobby', MaxResults: 4 }))
  t.equal(first.Fragments!.length, 4)
  t.match(first.NextToken, /^[A-Za-z0-9_-]+$/, 'a NextToken of the characters the model allows')
  const second = await archive.send(new ListFragmentsCommand({ StreamName: 'lobby', NextToken: first.NextToken }))
  t.same([...first.Fragments!, ...second.Fragments!].map((f) => f.FragmentNumber), numbers, 'the next page goes on where the first stopped')
  t.equal(second.NextToken, undefined, 'and the last page has none')
  const paged: Fragment[] = []
  for await (const page of paginateListFragments({ client: archive, pageSize: 2 }, {
    StreamName: 'lobby', FragmentSelector: { FragmentSelectorType: 'SERVER_TIMESTAMP', TimestampRange: { StartTimestamp: new Date(1_900_000_002_000), EndTimestamp: new Date(1_900_000_006_000) } },
  })) paged.push(...page.Fragments!)
  t.same(paged.map((f) => f.FragmentNumber), numbers.slice(1), 'the SDK paginator walks a range two at a time')

  t.match(await failure(archive.send(new ListFragmentsCommand({
    StreamName: 'lobby', FragmentSelector: { FragmentSelectorType: 'SERVER_TIMESTAMP', TimestampRange: { StartTimestamp: new Date(2), EndTimestamp: new Date(1) } },
  }))), { name: 'InvalidArgumentException' })
  t.match(await failure(archive.send(new ListFragmentsCommand({ StreamName: 'lobby', NextToken: 'bm90LWEtdG9rZW4tYXQtYWxs' }))), { name: 'InvalidArgumentException', message: /NextToken/ })
  t.match(await failure(archive.send(new ListFragmentsCommand({ StreamName: 'lobby', MaxResults: 1001 }))), { name: 'InvalidArgumentException' })
  t.match(await failure(archive.send(new ListFragmentsCommand({ StreamName: 'nowhere' }))), { name: 'ResourceNotFoundException', status: 404 })
  clock.advance(301_000)
  t.match(await failure(archive.send(new ListFragmentsCommand({ StreamName: 'lobby', NextToken: first.NextToken }))), { name: 'InvalidArgumentException', message: /expired/ }, 'a token expires after 5 minutes')
})

t.test('retention deletes fragments and their files by age on the relay\'s clock; 0 keeps the live buffer; DeleteStream removes the files', async (t) => {
  const clock = manualClock(1_900_000_000_000)
  const { relay, video, archive } = await videoRelay(t, KEY, clock)
  await video.send(new CreateStreamCommand({ StreamName: 'live', DataRetentionInHours: 0 }))
  await video.send(new CreateStreamCommand({ StreamName: 'hour', DataRetentionInHours: 1 }))
  await ingest(t, relay, clock, 'live', 3, 1000, 1n)
  await ingest(t, relay, clock, 'hour', 3, 1000, 2n)
  // Retention runs each minute on the relay's clock; its file deletions are waited for before counting.
  const count = async (stream: string) => {
    await relay.video.idle()
    return (await archive.send(new ListFragmentsCommand({ StreamName: stream }))).Fragments!.length
  }
  t.equal(videoFiles(relay).length, 8, 'two init segments and six fragments on disk')
  clock.advance(240_000)
  t.equal(await count('live'), 3, 'the live buffer (300 s) still holds them after 4 minutes')
  clock.advance(120_000)
  t.equal(await count('live'), 0, 'gone from the live buffer after 6 minutes')
  t.equal(await count('hour'), 3, 'a one-hour stream keeps them')
  t.equal(videoFiles(relay).length, 4, 'the live stream\'s files, its init segment with them, are deleted')
  clock.advance(3_600_000)
  t.equal(await count('hour'), 0, 'and after the hour, those go too')
  t.same(videoFiles(relay), [], 'no file is left')
  const metrics = await (await fetch(`${relay.endpoint}/metrics`)).text()
  t.match(metrics, /tributary_video_storage_bytes 0/)

  await ingest(t, relay, clock, 'hour', 2, 1000, 3n)
  t.equal(videoFiles(relay).length, 3)
  const arn = (await video.send(new DescribeStreamCommand({ StreamName: 'hour' }))).StreamInfo!.StreamARN
  await video.send(new DeleteStreamCommand({ StreamARN: arn }))
  t.same(videoFiles(relay), [], 'DeleteStream removes the stream\'s files')
  t.equal(relay.video.store.totalBytes(), 0)
})
