/**
 * The Kinesis endpoint's dispatch table: an action is a handler and a row, so an extension (here,
 * the test) adds one through the public registration and it is served like the built-in ones —
 * request decoding, the request context, AWS's error shape — while the table refuses a
 * name that is taken or malformed.
 */
import t from 'tap'
import { ErrorCode } from '../../shared/errors.js'
import { resolveStream, type ApiContext } from '../../relay/kinesis/context.js'
import { KinesisError } from '../../relay/kinesis/errors.js'
import { testRelay } from '../helpers/relay.js'

async function call(endpoint: string, action: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': `Kinesis_20131202.${action}` },
    body: JSON.stringify(body),
  })
  // An action without output answers with an empty body, as AWS's do.
  const text = await res.text()
  return { status: res.status, json: (text ? JSON.parse(text) : {}) as Record<string, unknown> }
}

t.test('an action added through the public registration is served with the request context', async (t) => {
  const relay = await testRelay(t)
  relay.kinesis.register('CountOpenShards', async (body: unknown, ctx: ApiContext) => {
    const req = body as { StreamName?: string }
    if (req.StreamName === 'refuse') throw new KinesisError('InvalidArgumentException', 'refused as asked')
    return { OpenShardCount: resolveStream(req, ctx).open.length }
  })
  t.same(await call(relay.endpoint, 'CreateStream', { StreamName: 'counted', ShardCount: 3 }), { status: 200, json: {} }, 'a built-in action still answers')
  t.same(await call(relay.endpoint, 'CountOpenShards', { StreamName: 'counted' }), { status: 200, json: { OpenShardCount: 3 } }, 'the new action answers from the stream domain')
  t.same(await call(relay.endpoint, 'CountOpenShards', { StreamName: 'absent' }), {
    status: 400, json: { __type: 'ResourceNotFoundException', message: 'Stream absent under account 000000000000 not found.' },
  }, 'the context helpers refuse in AWS wording')
  t.same(await call(relay.endpoint, 'CountOpenShards', { StreamName: 'refuse' }), {
    status: 400, json: { __type: 'InvalidArgumentException', message: 'refused as asked' },
  }, 'its own errors reach the client in AWS shape')
  t.same(await call(relay.endpoint, 'CountClosedShards', {}), {
    status: 400, json: { __type: 'UnknownOperationException' },
  }, 'an action nobody registered is unknown, without a message as AWS answers')
})

t.test('the table refuses a name that is taken or malformed', async (t) => {
  const relay = await testRelay(t)
  const noop = async () => ({})
  t.throws(() => relay.kinesis.register('PutRecords', noop), { code: ErrorCode.CONFLICT }, 'a built-in action is not replaced')
  relay.kinesis.register('Noop', noop)
  t.throws(() => relay.kinesis.register('Noop', noop), { code: ErrorCode.CONFLICT }, 'nor a registered one')
  for (const name of ['', 'lowercase', '__proto__', 'Has Space', 'X'.repeat(65)]) {
    t.throws(() => relay.kinesis.register(name, noop), { code: ErrorCode.REQUEST_INVALID }, `${JSON.stringify(name.slice(0, 12))} is not an action name`)
  }
  t.same(await call(relay.endpoint, 'Noop', {}), { status: 200, json: {} })
})
