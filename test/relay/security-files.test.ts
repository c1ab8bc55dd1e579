/**
 * Secrets and data at rest on the relay (issue 11: items 3 and 7, and the orphaned-streams start):
 * each test makes the attack or the accident and shows the relay refusing it, or the disk showing
 * nothing to read. In-process relays on real files; the relay process itself is in
 * security-files-process.test.ts.
 */
import t, { type Test } from 'tap'
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, truncateSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { resolveRelayConfig, type RelayConfig } from '../../shared/config.js'
import { startRelay, type Relay } from '../../relay/relay.js'
import { KinesisClient } from '../../relay/kinesis/client.js'
import { MIN_ADMIN_TOKEN_CHARS, adminToken, createSecretFile } from '../../relay/secrets.js'
import { tempDir } from '../helpers/tmp.js'

const KEY = 'arn:aws:kms:us-east-1:123456789012:key/12345678-1234-1234-1234-123456789012'

function configFor(dataDir: string, settings: Partial<RelayConfig> = {}): RelayConfig {
  return resolveRelayConfig({}, {}, { dataDir, mqttHost: '127.0.0.1', mqttPort: 0, httpPort: 0, allowAnonymous: true, groupCommitMs: 0, ...settings })
}

async function start(t: Test, dataDir: string, settings: Partial<RelayConfig> = {}): Promise<Relay & { kinesis: KinesisClient; endpoint: string }> {
  const relay = await startRelay(configFor(dataDir, settings), () => {})
  const endpoint = `http://127.0.0.1:${relay.httpPort}`
  const client = new KinesisClient({ endpoint })
  let closed = false
  const close = relay.close
  relay.close = async () => {
    if (closed) return
    closed = true
    client.close()
    await close()
  }
  t.teardown(() => relay.close())
  return Object.assign(relay, { kinesis: client, endpoint }) as unknown as Relay & { kinesis: KinesisClient; endpoint: string }
}

/** Every file and directory under `dir` (itself included) with its permission bits. */
function modesUnder(dir: string): { path: string; dir: boolean; mode: number }[] {
  const out = [{ path: dir, dir: true, mode: lstatSync(dir).mode & 0o777 }]
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    const path = join(e.parentPath, e.name)
    out.push({ path, dir: e.isDirectory(), mode: lstatSync(path).mode & 0o777 })
  }
  return out
}

/** Every byte of every file under `dir`. */
function bytesUnder(dir: string): Buffer {
  return Buffer.concat(readdirSync(dir, { withFileTypes: true, recursive: true }).filter((e) => e.isFile()).map((e) => readFileSync(join(e.parentPath, e.name))))
}

async function adminStatus(endpoint: string, authorization?: string): Promise<number> {
  const res = await fetch(`${endpoint}/admin/devices`, { headers: authorization === undefined ? {} : { authorization } })
  await res.arrayBuffer()
  return res.status
}

t.test('an empty or short admin.token refuses the start, naming the file and the fix; a sound one keeps the admin API closed to a request without it', async (t) => {
  for (const token of ['', '\n', 'short-token']) {
    const dataDir = tempDir(t)
    writeFileSync(join(dataDir, 'admin.token'), token, { mode: 0o600 })
    await t.rejects(startRelay(configFor(dataDir), () => {}), {
      code: 'CONFIG_INVALID',
      message: new RegExp(`${join(dataDir, 'admin.token').replace(/[.]/g, '\\.')} holds a ${token.trim().length}-character token; at least ${MIN_ADMIN_TOKEN_CHARS}.*rm `),
    }, `a ${token.trim().length}-character token refuses the start`)
  }
  const dataDir = tempDir(t)
  const relay = await start(t, dataDir)
  t.ok(relay.adminToken.length >= MIN_ADMIN_TOKEN_CHARS, 'the token a relay makes is long enough')
  t.equal(await adminStatus(relay.endpoint), 401, 'no Authorization header: refused')
  t.equal(await adminStatus(relay.endpoint, 'Bearer '), 401, 'an empty bearer token: refused')
  t.equal(await adminStatus(relay.endpoint, `Bearer ${relay.adminToken}`), 200, 'the token: served')
})

t.test('a token file truncated to zero bytes (a power cut) refuses the next start with the message', async (t) => {
  const dataDir = tempDir(t)
  const relay = await start(t, dataDir)
  await relay.close()
  truncateSync(join(dataDir, 'admin.token'), 0)
  await t.rejects(startRelay(configFor(dataDir), () => {}), { code: 'CONFIG_INVALID', message: /admin\.token holds a 0-character token.*power cut/ })
  // The fix the message gives works.
  const { rmSync } = await import('node:fs')
  rmSync(join(dataDir, 'admin.token'))
  const again = await start(t, dataDir)
  t.equal(await adminStatus(again.endpoint, `Bearer ${again.adminToken}`), 200, 'after rm, the relay starts with a new token')
})

t.test('secret files the group or others can read refuse the start: admin.token, encryption.key', async (t) => {
  const dataDir = tempDir(t)
  const relay = await start(t, dataDir)
  await relay.kinesis.call('CreateStream', { StreamName: 's', ShardCount: 1 })
  await relay.kinesis.call('StartStreamEncryption', { StreamName: 's', EncryptionType: 'KMS', KeyId: KEY })
  await relay.kinesis.call('PutRecord', { StreamName: 's', PartitionKey: 'k', Data: 'eA==' })
  await relay.close()
  t.equal(statSync(join(dataDir, 'encryption.key')).mode & 0o777, 0o600, 'the relay made the key 0600')
  t.equal(statSync(join(dataDir, 'admin.token')).mode & 0o777, 0o600, 'and the token')
  for (const [name, mode] of [['encryption.key', 0o644], ['encryption.key', 0o640], ['admin.token', 0o604]] as const) {
    const path = join(dataDir, name)
    chmodSync(path, mode)
    await t.rejects(startRelay(configFor(dataDir), () => {}), { code: 'CONFIG_INVALID', message: `${name}: ${path} has mode 0${mode.toString(8)}: group and others must have no access to a secret. Run: chmod 600 ${path}` }, `${name} ${mode.toString(8)}: refused`)
    t.equal(statSync(path).mode & 0o777, mode, 'and left as it was, for the operator to look at')
    chmodSync(path, 0o600)
  }
  const again = await start(t, dataDir)
  t.equal(await adminStatus(again.endpoint, `Bearer ${again.adminToken}`), 200, 'chmod 600 and it starts')
})

t.test('an empty encryption.key refuses the start (not only the first encrypted read)', async (t) => {
  const dataDir = tempDir(t)
  writeFileSync(join(dataDir, 'encryption.key'), '', { mode: 0o600 })
  await t.rejects(startRelay(configFor(dataDir), () => {}), { code: 'CONFIG_INVALID', message: /encryption\.key does not hold a 256-bit key \(64 hex digits\): it is empty/ })
})

t.test('a secret file is created whole or not at all: only the complete file ever has the real name', async (t) => {
  const dir = tempDir(t)
  const path = join(dir, 'admin.token')
  const seen: { realNameExists: boolean; temp: string }[] = []
  t.throws(() => createSecretFile(path, 'x'.repeat(40) + '\n', {
    afterWrite: (temp) => {
      seen.push({ realNameExists: existsSync(path), temp: readFileSync(temp, 'utf8') })
      throw new Error('power cut')
    },
  }), { message: 'power cut' })
  t.same(seen, [{ realNameExists: false, temp: 'x'.repeat(40) + '\n' }], 'when the write is done and synced, the real name does not exist yet')
  t.notOk(existsSync(path), 'a failure between write and link leaves no file under the real name')
  // What a real crash at that point leaves: the temporary file. The next start removes it and makes a whole token.
  writeFileSync(join(dir, 'admin.token.4242.deadbeef.tmp'), 'partial', { mode: 0o600 })
  const token = adminToken(dir)
  t.equal(token.length, MIN_ADMIN_TOKEN_CHARS, 'the next start makes a whole token')
  t.same(readdirSync(dir), ['admin.token'], 'and the leftover is gone')
  t.notOk(createSecretFile(path, 'other'), 'an existing secret is never replaced')
  t.equal(adminToken(dir), token)
})

t.test('after a relay has run with streams, segments, meta.db, checkpoints and an encrypted stream, every directory under its data directory is 0700 and every file 0600', async (t) => {
  const umask = process.umask(0o022) // the usual umask: the relay must not depend on the caller's
  t.teardown(() => { process.umask(umask) })
  const dataDir = join(tempDir(t), 'data')
  const relay = await start(t, dataDir, { segmentBytes: 4096 })
  const { kinesis } = relay
  await kinesis.call('CreateStream', { StreamName: 'plain', ShardCount: 2 })
  await kinesis.call('CreateStream', { StreamName: 'sealed', ShardCount: 1 })
  await kinesis.call('StartStreamEncryption', { StreamName: 'sealed', EncryptionType: 'KMS', KeyId: KEY })
  for (let i = 0; i < 40; i++) {
    await kinesis.call('PutRecords', { StreamName: i % 2 ? 'plain' : 'sealed', Records: Array.from({ length: 5 }, (_, j) => ({ PartitionKey: `k${j}`, Data: Buffer.alloc(100, i).toString('base64') })) })
  }
  const { SequenceNumber } = await kinesis.call<{ SequenceNumber: string }>('PutRecord', { StreamName: 'plain', PartitionKey: 'a', Data: 'eA==' })
  const { ShardId } = await kinesis.call<{ ShardId: string }>('PutRecord', { StreamName: 'plain', PartitionKey: 'a', Data: 'eA==' })
  t.match(await kinesis.request('PUT', `/checkpoints/plain/app/${ShardId}`, { SequenceNumber, ExpectedSequenceNumber: null }), { status: 200 })
  const running = modesUnder(dataDir)
  await relay.close()
  const after = modesUnder(dataDir)
  const names = after.map((e) => e.path.slice(dataDir.length))
  t.ok(names.includes('/meta.db') && names.includes('/admin.token') && names.includes('/encryption.key'), 'meta.db and the secrets are there')
  t.ok(names.filter((n) => n.endsWith('.log')).length > 3 && names.some((n) => n.endsWith('.idx') || n.endsWith('.index')), 'and several segments with an index')
  t.ok(running.some((e) => e.path.endsWith('meta.db-wal')), 'while running, meta.db-wal too')
  for (const e of [...running, ...after]) t.equal(e.mode, e.dir ? 0o700 : 0o600, `${e.path.slice(dataDir.length) || '/'} is ${e.dir ? '0700' : '0600'}`)
})

t.test('a data directory left group/world-readable by an older relay is made private at start', async (t) => {
  const dataDir = tempDir(t)
  const relay = await start(t, dataDir)
  await relay.kinesis.call('CreateStream', { StreamName: 's', ShardCount: 1 })
  await relay.kinesis.call('PutRecord', { StreamName: 's', PartitionKey: 'k', Data: 'eA==' })
  await relay.close()
  for (const e of modesUnder(dataDir)) {
    if (!e.path.endsWith('admin.token')) chmodSync(e.path, e.dir ? 0o755 : 0o644)
  }
  const events: { event: string; fields: Record<string, unknown> }[] = []
  const again = await startRelay(configFor(dataDir), (event, fields = {}) => events.push({ event, fields }))
  t.teardown(() => again.close())
  for (const e of modesUnder(dataDir)) t.equal(e.mode, e.dir ? 0o700 : 0o600, `${e.path.slice(dataDir.length) || '/'}`)
  t.match(events.filter((e) => e.event === 'data_dir_modes_tightened'), [{ fields: { dataDir, count: Number } }], 'and says so once')
})

t.test('with encryption on, neither the partition key nor the data is in the segment files; GetRecords returns both', async (t) => {
  const dataDir = tempDir(t)
  const relay = await start(t, dataDir)
  const { kinesis } = relay
  const put = async (StreamName: string, key: string, data: string) => {
    await kinesis.call('CreateStream', { StreamName, ShardCount: 1 })
    if (StreamName === 'sealed') await kinesis.call('StartStreamEncryption', { StreamName, EncryptionType: 'KMS', KeyId: KEY })
    await kinesis.call('PutRecord', { StreamName, PartitionKey: key, Data: Buffer.from(data).toString('base64') })
    await kinesis.call('PutRecords', { StreamName, Records: [{ PartitionKey: `${key}-batch`, Data: Buffer.from(`${data}-batch`).toString('base64') }] })
  }
  await put('plain', 'pk-control-walrus-5190', 'data-control-heron-2231')
  await put('sealed', 'pk-zebra-7731', 'data-okapi-4412')
  await relay.close()
  const disk = bytesUnder(join(dataDir, 'streams'))
  t.ok(disk.includes('pk-control-walrus-5190') && disk.includes('data-control-heron-2231'), 'the search finds an unencrypted stream\'s key and data (so it can fail)')
  t.notOk(disk.includes('pk-zebra-7731'), 'the sealed stream\'s partition key is not on disk')
  t.notOk(disk.includes('data-okapi-4412'), 'nor its data')
  t.notOk(bytesUnder(dataDir).includes('pk-zebra-7731'), 'nor anywhere in the data directory')

  const again = await start(t, dataDir)
  const { ShardIterator } = await again.kinesis.call<{ ShardIterator: string }>('GetShardIterator', { StreamName: 'sealed', ShardId: 'shardId-000000000000', ShardIteratorType: 'TRIM_HORIZON' })
  const { Records } = await again.kinesis.call<{ Records: { PartitionKey: string; Data: string; EncryptionType?: string }[] }>('GetRecords', { ShardIterator })
  t.same(Records.map((r) => [r.PartitionKey, Buffer.from(r.Data, 'base64').toString(), r.EncryptionType]), [
    ['pk-zebra-7731', 'data-okapi-4412', 'KMS'],
    ['pk-zebra-7731-batch', 'data-okapi-4412-batch', 'KMS'],
  ], 'read back after a restart: both, as written')
})

t.test('a zero-length or missing meta.db beside stream data refuses the start, with what to do; doing it starts an empty relay', async (t) => {
  const dataDir = tempDir(t)
  const relay = await start(t, dataDir)
  await relay.kinesis.call('CreateStream', { StreamName: 'kept', ShardCount: 1 })
  await relay.kinesis.call('PutRecord', { StreamName: 'kept', PartitionKey: 'k', Data: 'eA==' })
  await relay.close()
  const meta = join(dataDir, 'meta.db')
  const streams = join(dataDir, 'streams')
  for (const name of readdirSync(dataDir)) if (name.startsWith('meta.db-')) renameSync(join(dataDir, name), join(dataDir, `${name}.kept`))
  truncateSync(meta, 0)
  await t.rejects(startRelay(configFor(dataDir), () => {}), {
    code: 'CONFIG_INVALID',
    message: new RegExp(`meta\\.db is empty \\(zero bytes\\) but .*streams holds the data of 1 stream .*restore meta\\.db .*mv ${streams.replace(/[.]/g, '\\.')} ${streams.replace(/[.]/g, '\\.')}\\.orphaned-.* && mv `),
  })
  t.equal(statSync(meta).size, 0, 'nothing was written to meta.db')
  renameSync(meta, `${meta}.broken`)
  await t.rejects(startRelay(configFor(dataDir), () => {}), { code: 'CONFIG_INVALID', message: /meta\.db is missing but/ }, 'missing: the same')
  t.notOk(existsSync(meta), 'and none is created')

  renameSync(streams, `${streams}.orphaned`)
  const fresh = await start(t, dataDir)
  t.same((await fresh.kinesis.call<{ StreamNames: string[] }>('ListStreams', {})).StreamNames, [], 'with the data moved aside, an empty relay starts')
})

t.test('a fresh data directory, and one with stream directories holding no data, start as before', async (t) => {
  const dataDir = tempDir(t)
  mkdirSync(join(dataDir, 'streams', 'some-id', 'shardId-000000000000'), { recursive: true })
  const relay = await start(t, dataDir)
  t.same((await relay.kinesis.call<{ StreamNames: string[] }>('ListStreams', {})).StreamNames, [])
})

t.test('a TLS private key the group or others can read is warned about at start (the operator owns it; a group-readable key is an ordinary setup)', async (t) => {
  const { execFileSync } = await import('node:child_process')
  const dir = tempDir(t)
  const key = join(dir, 'key.pem')
  const cert = join(dir, 'cert.pem')
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' })
  const warnings = async () => {
    const events: { event: string; fields: Record<string, unknown> }[] = []
    const relay = await startRelay(configFor(join(dir, 'data'), { httpsCert: cert, httpsKey: key }), (event, fields = {}) => events.push({ event, fields }))
    await relay.close()
    return events.filter((e) => e.event === 'secret_file_mode')
  }
  chmodSync(key, 0o644)
  t.match(await warnings(), [{ fields: { file: key, warning: `${key} has mode 0644: every user can read this private key; chmod 600 ${key} unless a group must read it` } }], '0644: warned')
  chmodSync(key, 0o640)
  t.match(await warnings(), [{ fields: { file: key, warning: /mode 0640: its group can read/ } }], '0640: warned')
  chmodSync(key, 0o600)
  t.same(await warnings(), [], '0600: nothing to say')
})
