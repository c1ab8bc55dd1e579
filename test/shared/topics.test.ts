import t from 'tap'
import { parseTopic, topics } from '../../shared/topics.js'

t.test('every topic the relay builds parses back to its parts', async (t) => {
  t.same(parseTopic(topics.records('dev-1', 'temps')), { kind: 'records', device: 'dev-1', stream: 'temps' })
  t.same(parseTopic(topics.video('dev-1', 'cam')), { kind: 'video', device: 'dev-1', stream: 'cam' })
  t.same(parseTopic(topics.rejects('dev-1')), { kind: 'rejects', device: 'dev-1' })
  t.same(parseTopic(topics.videoAcks('dev-1')), { kind: 'video-acks', device: 'dev-1' })
  t.same(parseTopic(topics.status('dev-1')), { kind: 'status', device: 'dev-1' })
  t.same(parseTopic(topics.put('dev-1', 'temps')), { kind: 'put', device: 'dev-1', stream: 'temps', partitionKey: 'dev-1' }, 'a plain record is keyed by its device unless the topic says')
  t.same(parseTopic(topics.put('dev-1', 'temps', 'room 2')), { kind: 'put', device: 'dev-1', stream: 'temps', partitionKey: 'room 2' })
})

t.test('hostile or malformed topics parse to nothing', async (t) => {
  for (const topic of ['', 'tributary', 'tributary/v2/d/records/s', 'tributary/v1/+/records/s', 'tributary/v1/d/records/#',
    'tributary/v1/d/records/s/extra', 'tributary/v1/d/records/', 'tributary/v1/../records/s', 'tributary/v1/d/rejects/x',
    'tributary/v1/d/unknown', `tributary/v1/${'x'.repeat(200)}/status`, 'tributary/v1/d/records/a b',
    'tributary/v1/d/put', 'tributary/v1/d/put/s/k/extra', 'tributary/v1/d/put/a b/k']) {
    t.equal(parseTopic(topic), null, JSON.stringify(topic))
  }
})
