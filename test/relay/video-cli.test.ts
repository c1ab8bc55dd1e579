/** `tributary video …` as a user runs it: a child process against an in-process relay that a device sent fragments to. */
import t from 'tap'
import { testRelay } from '../helpers/relay.js'
import { cli } from '../helpers/cli.js'
import { chunksOf, clip, videoDevice } from './video-fixtures.js'

t.test('create, list, describe, fragments in a time range, delete; mistakes named', async (t) => {
  const relay = await testRelay(t)
  const e = ['--endpoint', relay.endpoint]
  const created = await cli(['video', 'create', 'porch', '--retention', '2', ...e])
  t.equal(created.code, 0, created.stderr)
  t.match(created.stdout, /^arn:aws:kinesisvideo:us-east-1:\d{12}:stream\/porch\/\d+\n$/)
  t.equal((await cli(['video', 'create', 'yard', ...e])).code, 0)

  const list = await cli(['video', 'list', ...e])
  t.equal(list.code, 0, list.stderr)
  t.same(list.stdout.trim().split('\n').map((l) => l.split('\t').slice(0, 3)), [['porch', 'ACTIVE', '2h'], ['yard', 'ACTIVE', '24h']])
  const described = JSON.parse((await cli(['video', 'describe', 'porch', ...e])).stdout)
  t.match(described, { StreamName: 'porch', Status: 'ACTIVE', DataRetentionInHours: 2, StreamARN: /stream\/porch\// })

  // Three fragments one second apart in producer time (the fixtures' stamps), sent as a device does.
  const { init, fragments } = clip(3, 1)
  const device = await videoDevice(t, relay.mqttPort, 'cam-1')
  const session = 77n
  await device.send('porch', chunksOf(session, 0, init))
  await device.until(0, 'PERSISTED', session)
  for (let i = 1; i <= 3; i++) {
    await device.send('porch', chunksOf(session, i, fragments[i - 1]!))
    await device.until(i, 'PERSISTED', session)
  }
  const base = 1_800_000_000_000
  const all = await cli(['video', 'fragments', 'porch', '--from', new Date(base).toISOString(), '--to', new Date(base + 10_000).toISOString(), ...e])
  t.equal(all.code, 0, all.stderr)
  const lines = all.stdout.trim().split('\n').map((l) => l.split('\t'))
  t.same(lines.map((l) => l[1]), [1, 2, 3].map((i) => new Date(base + i * 1000).toISOString()), 'oldest first, by producer time')
  t.same(lines.map((l) => l[2]), ['1.000s', '1.000s', '1.000s'])
  t.same(lines.map((l) => Number(l[3])), fragments.slice(0, 3).map((f) => f.length), 'sizes as sent')
  t.ok(lines.every((l) => /^9\d{46}$/.test(l[0]!)) && lines[0]![0]! < lines[1]![0]! && lines[1]![0]! < lines[2]![0]!, 'fragment numbers increase in ingest order')
  t.match(all.stderr, /^3 fragments, 3\.0 s, \d+ bytes\n$/)

  // A range that holds only the second fragment's start; JSON lines with AWS's field names.
  const one = await cli(['video', 'fragments', 'porch', '--from', new Date(base + 1500).toISOString(), '--to', new Date(base + 2500).toISOString(), '--json', ...e])
  const parsed = one.stdout.trim().split('\n').map((l) => JSON.parse(l))
  t.equal(parsed.length, 1)
  t.match(parsed[0], { FragmentNumber: lines[1]![0], FragmentLengthInMilliseconds: 1000, ProducerTimestamp: (base + 2000) / 1000 })

  const noStream = await cli(['video', 'fragments', 'nowhere', ...e])
  t.equal(noStream.code, 1)
  t.match(noStream.stderr, /^error: ResourceNotFoundException: /)
  const badTime = await cli(['video', 'fragments', 'porch', '--from', 'yesterday-ish', ...e])
  t.equal(badTime.code, 1)
  t.match(badTime.stderr, /--from: must be a time such as/)
  const badRetention = await cli(['video', 'create', 'x', '--retention', '-1', ...e])
  t.match(badRetention.stderr, /--retention: must be whole hours/)
  t.match((await cli(['video', 'frobnicate', ...e])).stderr, /unknown subcommand "frobnicate"; use list, describe, create, delete, fragments/)
  t.match((await cli(['video', 'describe', ...e])).stderr, /name the stream: tributary video describe STREAM/)

  const deleted = await cli(['video', 'delete', 'yard', ...e])
  t.equal(deleted.stdout, 'deleted video stream yard\n')
  t.same((await cli(['video', 'list', ...e])).stdout.trim().split('\n').map((l) => l.split('\t')[0]), ['porch'])
})
