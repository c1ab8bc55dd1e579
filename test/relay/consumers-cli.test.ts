/** `tributary consumers …` as a user runs it: a child process against an in-process relay. */
import t from 'tap'
import { testRelay } from '../helpers/relay.js'
import { cli } from '../helpers/cli.js'



t.test('register (waiting for ACTIVE), list, describe and deregister consumers', async (t) => {
  const relay = await testRelay(t)
  const e = ['--endpoint', relay.endpoint]
  t.equal((await cli(['streams', 'create', 'cli-c', ...e])).code, 0)
  const reg = await cli(['consumers', 'register', 'cli-c', 'reader', '--wait', ...e])
  t.equal(reg.code, 0, reg.stderr)
  t.match(reg.stdout, /^reader\tACTIVE\t\d{4}-\d\d-\d\dT[\d:.]+Z\tarn:aws:kinesis:us-east-1:\d{12}:stream\/cli-c\/consumer\/reader:\d+\n$/)
  t.equal((await cli(['consumers', 'register', 'cli-c', 'second', ...e])).code, 0)
  const list = await cli(['consumers', 'list', 'cli-c', ...e])
  t.same(list.stdout.trim().split('\n').map((l) => l.split('\t')[0]), ['reader', 'second'])
  const described = JSON.parse((await cli(['consumers', 'describe', 'cli-c', 'reader', ...e])).stdout)
  t.match(described, { ConsumerDescription: { ConsumerName: 'reader', ConsumerStatus: 'ACTIVE', StreamARN: /stream\/cli-c$/ } })
  const gone = await cli(['consumers', 'deregister', 'cli-c', 'reader', ...e])
  t.equal(gone.stdout, 'deregistered consumer reader of stream cli-c\n')
  const missing = await cli(['consumers', 'describe', 'cli-c', 'nobody', ...e])
  t.equal(missing.code, 1)
  t.match(missing.stderr, /^error: ResourceNotFoundException: Consumer nobody/)
  const noName = await cli(['consumers', 'register', 'cli-c', ...e])
  t.equal(noName.code, 1)
  t.match(noName.stderr, /name the consumer: tributary consumers register STREAM NAME/)
  const badVerb = await cli(['consumers', 'frobnicate', ...e])
  t.match(badVerb.stderr, /unknown subcommand "frobnicate"; use register, list, describe, deregister/)
})
