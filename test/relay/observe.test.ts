import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { codec } from '../../hardware/index.js'
import { topics } from '../../shared/topics.js'
import { KinesisClient } from '../../relay/kinesis/client.js'
import { spawnRelay, testRelay } from '../helpers/relay.js'
import { tempDir } from '../helpers/tmp.js'

t.test('/healthz and /metrics report what an operator watches', async (t) => {
  const relay = await testRelay(t)
  const health = await fetch(`${relay.endpoint}/healthz`)
  t.equal(health.status, 200)
  t.match(await health.json(), { status: 'ok', storage: 'ok', corruptions: 0 })

  const kinesis = new KinesisClient({ endpoint: relay.endpoint })
  t.teardown(() => kinesis.close())
  await kinesis.call('CreateStream', { StreamName: 'm', ShardCount: 1 })
  await kinesis.call('PutRecords', { StreamName: 'm', Records: [{ PartitionKey: 'a', Data: 'AAAA' }, { PartitionKey: 'b', Data: 'AAAA' }] })
  const device = await mqtt.connectAsync(`mqtt://127.0.0.1:${relay.mqttPort}`, { clientId: 'obs-dev', protocolVersion: 4, reconnectPeriod: 0 })
  t.teardown(() => device.endAsync(true))
  await device.publishAsync(topics.records('obs-dev', 'm'), codec.encodeBatch({ epoch: 1n, sequence: 0, records: [{ partitionKey: 'k', data: Buffer.from('12345'), producerTimeMs: 0, clockSynced: false }] }), { qos: 1 })
  const it = await kinesis.call<{ ShardIterator: string }>('GetShardIterator', { StreamName: 'm', ShardId: 'shardId-000000000000', ShardIteratorType: 'TRIM_HORIZON' })
  await kinesis.call('GetRecords', { ShardIterator: it.ShardIterator })
  await kinesis.call('DescribeStream', { StreamName: 'nope' }).catch(() => {})

  const res = await fetch(`${relay.endpoint}/metrics`)
  t.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4/)
  const text = await res.text()
  t.match(text, /tributary_records_in_total\{stream="m",source="api"\} 2/)
  t.match(text, /tributary_records_in_total\{stream="m",source="mqtt"\} 1/)
  t.match(text, /tributary_bytes_in_total\{stream="m",source="mqtt"\} 5/)
  t.match(text, /tributary_records_out_total\{stream="m"\} 3/)
  t.match(text, /tributary_ingest_latency_seconds_count\{source="mqtt"\} 1/)
  t.match(text, /tributary_ingest_latency_seconds_count\{source="api"\} 1/)
  t.match(text, /tributary_group_commit_records_count [1-9]/)
  t.match(text, /tributary_connected_devices 1/)
  t.match(text, /tributary_rejections_total\{code="ResourceNotFoundException"\} 1/)
  t.match(text, /tributary_api_requests_total\{action="PutRecords",outcome="ok"\} 1/)
})

t.test('the relay reads a YAML config file, and flags and environment override it', async (t) => {
  const dir = tempDir(t)
  const file = join(dir, 'relay.yaml')
  writeFileSync(file, `relay:\n  dataDir: ${join(dir, 'data')}\n  mqttHost: 127.0.0.1\n  mqttPort: 0\n  httpPort: 0\n  retentionHours: 48\n  autoCreateShardCount: 3\n`)
  const relay = await spawnRelay(['--config', file, '--allow-anonymous'], { TRIBUTARY_AUTO_CREATE_SHARDS: '2' })
  t.teardown(() => { relay.process.kill('SIGKILL') })
  const device = await mqtt.connectAsync(`mqtt://127.0.0.1:${relay.mqttPort}`, { clientId: 'cfg-dev', protocolVersion: 4, reconnectPeriod: 0 })
  await device.publishAsync(topics.records('cfg-dev', 'auto'), codec.encodeBatch({ epoch: 1n, sequence: 0, records: [{ partitionKey: 'k', data: Buffer.from('x'), producerTimeMs: 0, clockSynced: false }] }), { qos: 1 })
  await device.endAsync()
  const kinesis = new KinesisClient({ endpoint: relay.endpoint })
  const summary = await kinesis.call<{ StreamDescriptionSummary: { RetentionPeriodHours: number; OpenShardCount: number } }>('DescribeStreamSummary', { StreamName: 'auto' })
  kinesis.close()
  t.equal(summary.StreamDescriptionSummary.RetentionPeriodHours, 48, 'from the file')
  t.equal(summary.StreamDescriptionSummary.OpenShardCount, 2, 'the environment beats the file')
  relay.process.kill('SIGTERM')
  t.equal(await relay.exited, 0, 'SIGTERM stops the relay cleanly')
})

t.test('an HTTP/1.1 request whose first packet is a lone "P" is still served as HTTP/1.1', async (t) => {
  const relay = await testRelay(t)
  const net = await import('node:net')
  const socket = net.connect(relay.httpPort, '127.0.0.1')
  t.teardown(() => socket.destroy())
  await new Promise((r) => socket.once('connect', r))
  socket.setNoDelay(true)
  socket.write('P')
  await new Promise((r) => setTimeout(r, 50))
  socket.write('OST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n')
  const answer = await new Promise<string>((resolve) => socket.once('data', (d: Buffer) => resolve(d.toString())))
  t.match(answer, /^HTTP\/1\.1 404/, 'answered over HTTP/1.1 (no POST route for /metrics)')
})
