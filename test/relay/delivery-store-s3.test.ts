/**
 * The S3 object store against a real S3 API: OpenStack Swift with s3api on loopback (one Swift for
 * this file, a bucket per test). It runs the ObjectStore contract, then what the S3 sink relies on:
 * multipart above the threshold (and aborted when it fails), content headers, and failures as
 * DeliveryErrors that say what went wrong and come quickly when the server is down.
 */
import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import http from 'node:http'
import net from 'node:net'
import { HeadObjectCommand, ListMultipartUploadsCommand, S3Client } from '@aws-sdk/client-s3'
import { openObjectStore, S3ObjectStore, type S3StoreOptions } from '../../relay/delivery/store/index.js'
import { DeliveryError, type S3Target } from '../../relay/delivery/types.js'
import { objectStoreContract, LARGE_OBJECT_BYTES } from '../contracts/objectstore.js'
import { startSwift } from '../helpers/swift.js'

const MiB = 1024 * 1024
const swift = await startSwift(t)
t.comment(`Swift with s3api answered ${swift.startupMs} ms after its servers were started`)

let buckets = 0
async function bucket(): Promise<string> {
  const name = `tributary-${process.pid}-${++buckets}`
  await swift.createBucket(name)
  return name
}

function target(bucketName: string, settings: Partial<S3Target> = {}): S3Target {
  return {
    bucket: bucketName, endpoint: swift.endpoint, region: swift.region, forcePathStyle: true,
    credentials: { accessKeyId: swift.accessKeyId, secretAccessKey: swift.secretAccessKey },
    multipartThresholdBytes: 5 * MiB, partBytes: 5 * MiB, ...settings,
  }
}

function store(t: Test, settings: Partial<S3Target>, options?: S3StoreOptions): S3ObjectStore {
  const s = new S3ObjectStore(target(settings.bucket ?? 'unset', settings), options)
  t.teardown(() => s.close())
  return s
}

/** The SDK straight to Swift, to look at what the store did. */
const direct = new S3Client({ endpoint: swift.endpoint, region: swift.region, forcePathStyle: true, credentials: swift, requestChecksumCalculation: 'WHEN_REQUIRED' })
t.teardown(() => direct.destroy())

const json = { contentType: 'application/json' }
const failure = (p: Promise<unknown>) => p.then(() => { throw new Error('expected a failure') }, (e: unknown) => e)

// Two keys a page: list must follow ListObjectsV2's continuation tokens.
objectStoreContract(t, 's3 (Swift)', async () => new S3ObjectStore(target(await bucket()), { listPageSize: 2 }))

t.test('openObjectStore opens an S3 target as the S3 store', async (t) => {
  const s = openObjectStore({ type: 's3', ...target(await bucket()) })
  t.teardown(() => s.close())
  t.ok(s instanceof S3ObjectStore)
  t.match(s.description, /^s3:\/\/tributary-.* at http:\/\/127\.0\.0\.1:\d+$/)
})

t.test('s3: objects below the threshold go up in one PUT, above it in parts of partBytes, with their content type and encoding', async (t) => {
  const name = await bucket()
  const s = store(t, { bucket: name })
  await s.put('small.json.gz', Buffer.from('x'.repeat(1000)), { contentType: 'application/json', contentEncoding: 'gzip' })
  await s.put('large.parquet', randomBytes(LARGE_OBJECT_BYTES), { contentType: 'application/vnd.apache.parquet' })
  const small = await direct.send(new HeadObjectCommand({ Bucket: name, Key: 'small.json.gz' }))
  t.match(small, { ContentType: 'application/json', ContentEncoding: 'gzip', ContentLength: 1000 })
  t.notMatch(small.ETag, /-\d+"?$/, 'a plain object, not a multipart one')
  const large = await direct.send(new HeadObjectCommand({ Bucket: name, Key: 'large.parquet' }))
  t.match(large, { ContentType: 'application/vnd.apache.parquet', ContentLength: LARGE_OBJECT_BYTES })
  t.match(large.ETag, /-3"?$/, '11 MiB in parts of 5 MiB: three parts')
  const uploads = await direct.send(new ListMultipartUploadsCommand({ Bucket: name }))
  t.same(uploads.Uploads ?? [], [], 'no upload is left open')
})

/** A loopback HTTP proxy to Swift that cuts the connection of any request whose URL matches `cut`. */
async function cuttingProxy(t: Test, cut: RegExp): Promise<{ endpoint: string; seen: string[] }> {
  const upstream = new URL(swift.endpoint)
  const seen: string[] = []
  const server = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`)
    if (cut.test(req.url ?? '')) { req.socket.destroy(); return }
    // Headers as received (Host included): the SigV4 signature covers them.
    const forward = http.request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers)
      answer.pipe(res)
    })
    forward.on('error', () => res.destroy())
    req.pipe(forward)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  return { endpoint: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`, seen }
}

t.test('s3: a multipart upload that fails midway is aborted, leaving no object and no open upload', async (t) => {
  const name = await bucket()
  const proxy = await cuttingProxy(t, /partNumber=2/)
  const s = store(t, { bucket: name, endpoint: proxy.endpoint })
  const err = await failure(s.put('cut.bin', randomBytes(LARGE_OBJECT_BYTES), json))
  t.ok(err instanceof DeliveryError)
  t.match(err, { code: 'S3.ConnectionFailed', retryable: true, message: /uploading part 2 of cut\.bin/ })
  t.ok(proxy.seen.some((r) => /^PUT .*partNumber=1/.test(r)), 'part 1 went up')
  t.ok(proxy.seen.some((r) => /^DELETE .*uploadId=/.test(r)), 'the upload was aborted')
  t.equal(await s.get('cut.bin'), undefined, 'no object')
  const uploads = await direct.send(new ListMultipartUploadsCommand({ Bucket: name }))
  t.same(uploads.Uploads ?? [], [], 'no open upload whose parts would stay stored')
})

t.test('s3: a wrong secret is refused by the server with S3.SignatureDoesNotMatch', async (t) => {
  const name = await bucket()
  const s = store(t, { bucket: name, credentials: { accessKeyId: swift.accessKeyId, secretAccessKey: 'not-the-secret' } })
  const err = await failure(s.put('k', Buffer.from('x'), json))
  t.ok(err instanceof DeliveryError)
  t.match(err, { code: 'S3.SignatureDoesNotMatch', message: /putting k at s3:\/\/.*SignatureDoesNotMatch \(HTTP 403\).*check the credentials/ })
  t.equal((err as DeliveryError).retryable, true, 'retried like Firehose does: an operator may fix the credentials within the retry duration')
  await t.rejects(s.list(''), { code: 'S3.SignatureDoesNotMatch' })
  t.same(await direct.send(new ListMultipartUploadsCommand({ Bucket: name })).then((r) => r.Uploads ?? []), [])
  t.equal(await store(t, { bucket: name }).get('k'), undefined, 'nothing was stored')
})

t.test('s3: a bucket that does not exist is S3.NoSuchBucket', async (t) => {
  const s = store(t, { bucket: 'tributary-no-such-bucket' })
  await t.rejects(s.put('k', Buffer.from('x'), json), { code: 'S3.NoSuchBucket', retryable: true, message: /does the bucket exist/ })
  await t.rejects(s.put('big', randomBytes(6 * MiB), json), { code: 'S3.NoSuchBucket', message: /starting the multipart upload of big/ })
})

t.test('s3: with the proxy stopped, puts fail quickly with a retryable ConnectionFailed, and succeed once it is back', async (t) => {
  const name = await bucket()
  const s = store(t, { bucket: name })
  await s.put('before', Buffer.from('1'), json)
  await swift.stop()
  let restarted = false
  t.teardown(async () => { if (!restarted) await swift.start() })
  const began = Date.now()
  const err = await failure(s.put('during', Buffer.from('2'), json))
  const tookMs = Date.now() - began
  t.ok(err instanceof DeliveryError)
  t.match(err, { code: 'S3.ConnectionFailed', retryable: true, message: /putting during at s3:\/\/.*cannot reach the server \(ECONNREFUSED\)/ })
  // A refused connection on loopback is immediate; the bound only tells a hang from an answer.
  t.ok(tookMs < 10_000, `it failed in ${tookMs} ms rather than hanging`)
  await t.rejects(s.get('before'), { code: 'S3.ConnectionFailed', retryable: true })
  await t.rejects(s.list(''), { code: 'S3.ConnectionFailed', retryable: true })
  await swift.start()
  restarted = true
  await s.put('during', Buffer.from('2'), json)
  t.same(await s.list(''), ['before', 'during'], 'the same store works again without being reopened')
})

t.test('s3: a server that accepts but never answers times out with a retryable RequestTimeout', async (t) => {
  const silent = net.createServer((socket) => { socket.on('data', () => {}) })
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
  const sockets = new Set<net.Socket>()
  silent.on('connection', (socket) => sockets.add(socket))
  t.teardown(() => new Promise<void>((resolve) => { for (const socket of sockets) socket.destroy(); silent.close(() => resolve()) }))
  const s = store(t, { bucket: 'any', endpoint: `http://127.0.0.1:${(silent.address() as net.AddressInfo).port}` }, { requestTimeoutMs: 300, maxAttempts: 1 })
  await t.rejects(s.put('k', Buffer.from('x'), json), { code: 'S3.RequestTimeout', retryable: true, message: /putting k at/ })
})

t.test('s3: a part size below S3\'s 5 MiB minimum is refused when the store is made', async (t) => {
  t.throws(() => new S3ObjectStore(target('any', { partBytes: 1024 })), /partBytes must be at least 5242880/)
})
