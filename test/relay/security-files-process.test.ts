/**
 * The relay process and its secrets (issue 11): access keys from a file instead of the command line
 * (where `ps` shows them to every user), reloaded on SIGHUP without dropping connections; and the
 * process's own umask keeping the data directory private. A real `tributary relay` child process.
 */
import t, { type Test } from 'tap'
import { execFileSync } from 'node:child_process'
import { chmodSync, lstatSync, readdirSync, renameSync, writeFileSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { join } from 'node:path'
import { KinesisClient } from '../../relay/kinesis/client.js'
import { spawnRelay, type ChildRelay } from '../helpers/relay.js'
import { tempDir } from '../helpers/tmp.js'

const ONE = { accessKeyId: 'KEYONE', secretAccessKey: 'secret-one-4f1a9c' }
const TWO = { accessKeyId: 'KEYTWO', secretAccessKey: 'secret-two-77b0e2' }

/** Writes the access-keys file as an operator would (a new file renamed over the old), mode 0600. */
function writeKeys(path: string, text: string, mode = 0o600): void {
  writeFileSync(`${path}.new`, text, { mode })
  chmodSync(`${path}.new`, mode)
  renameSync(`${path}.new`, path)
}

async function relayWithKeysFile(t: Test, keysFile: string, dataDir: string): Promise<ChildRelay & { waitLog: (event: string) => Promise<Record<string, unknown>> }> {
  const relay = await spawnRelay(['--data-dir', dataDir, '--access-keys-file', keysFile, '--http-host', '127.0.0.1', '--http-port', '0', '--mqtt-host', '127.0.0.1', '--mqtt-port', '0'])
  t.teardown(async () => {
    relay.process.kill('SIGTERM')
    await relay.exited
  })
  let lines: string[] = []
  const waiters: { event: string; resolve: (fields: Record<string, unknown>) => void }[] = []
  let partial = ''
  relay.process.stderr!.on('data', (d: Buffer) => {
    partial += d.toString()
    const parts = partial.split('\n')
    partial = parts.pop()!
    lines = lines.concat(parts)
    for (const line of parts) {
      if (!line.startsWith('{')) continue
      const fields = JSON.parse(line) as Record<string, unknown>
      for (const w of waiters.splice(0)) {
        if (fields.event === w.event || fields.msg === w.event) w.resolve(fields)
        else waiters.push(w)
      }
    }
  })
  const waitLog = (event: string) => new Promise<Record<string, unknown>>((resolve) => waiters.push({ event, resolve }))
  return Object.assign(relay, { waitLog })
}

function client(t: Test, endpoint: string, credentials?: typeof ONE): KinesisClient {
  const kinesis = new KinesisClient({ endpoint, credentials })
  t.teardown(() => kinesis.close())
  return kinesis
}

/** One HTTP/1.1 request on an open socket, answered: the status line. */
function requestOn(socket: Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = ''
    const onData = (d: Buffer) => {
      text += d.toString()
      const end = text.indexOf('\r\n\r\n')
      if (end < 0) return
      const length = Number(/content-length: (\d+)/i.exec(text.slice(0, end))?.[1] ?? 0)
      if (text.length < end + 4 + length) return
      socket.off('data', onData)
      resolve(text.split('\r\n')[0]!)
    }
    socket.on('data', onData)
    socket.once('close', () => reject(new Error('the connection was closed')))
    socket.write('GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: keep-alive\r\n\r\n')
  })
}

t.test('access keys from a file: not in ps; after editing it and SIGHUP the new key works, the removed key is refused, and open connections stay open', async (t) => {
  const dir = tempDir(t)
  const keysFile = join(dir, 'access-keys')
  writeKeys(keysFile, `# the relay's access keys\n${ONE.accessKeyId}:${ONE.secretAccessKey}\n`)
  const relay = await relayWithKeysFile(t, keysFile, join(dir, 'data'))

  const ps = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' })
  t.ok(ps.includes(keysFile), 'ps shows the relay with the file named')
  t.notOk(ps.includes(ONE.secretAccessKey), 'and not the secret')

  await client(t, relay.endpoint, ONE).call('ListStreams', {})
  t.pass('the key in the file works')
  await t.rejects(client(t, relay.endpoint).call('ListStreams', {}), 'an unsigned request is refused: SigV4 is on')
  await t.rejects(client(t, relay.endpoint, TWO).call('ListStreams', {}), 'a key not in the file is refused')

  const socket = connect(relay.httpPort, '127.0.0.1')
  t.teardown(() => socket.destroy())
  await new Promise((r) => socket.once('connect', r))
  t.equal(await requestOn(socket), 'HTTP/1.1 200 OK', 'a keep-alive connection is open before the reload')

  writeKeys(keysFile, `${TWO.accessKeyId}:${TWO.secretAccessKey}\n`)
  const reloaded = relay.waitLog('access_keys_reloaded')
  relay.process.kill('SIGHUP')
  t.match(await reloaded, { file: keysFile, keys: 1 }, 'the relay says it reloaded one key')
  await client(t, relay.endpoint, TWO).call('ListStreams', {})
  t.pass('the new key works')
  await t.rejects(client(t, relay.endpoint, ONE).call('ListStreams', {}), { type: 'UnrecognizedClientException' }, 'the removed key is refused')
  t.equal(await requestOn(socket), 'HTTP/1.1 200 OK', 'the connection opened before the reload still serves')

  // A bad file on reload keeps the keys there are: an empty one would otherwise turn SigV4 off.
  for (const [text, mode, why] of [['', 0o600, /holds no access key/], [`${ONE.accessKeyId}:${ONE.secretAccessKey}\n`, 0o644, /has mode 0644.*chmod 600/]] as const) {
    writeKeys(keysFile, text, mode)
    const failed = relay.waitLog('access_keys_reload_failed')
    relay.process.kill('SIGHUP')
    t.match(await failed, { file: keysFile, error: why }, `reload refused: ${why}`)
    await client(t, relay.endpoint, TWO).call('ListStreams', {})
    await t.rejects(client(t, relay.endpoint).call('ListStreams', {}), 'SigV4 still on, the old key still works')
  }
})

t.test('an access-keys file the group or others can read refuses the start', async (t) => {
  const dir = tempDir(t)
  const keysFile = join(dir, 'access-keys')
  writeKeys(keysFile, `${ONE.accessKeyId}:${ONE.secretAccessKey}\n`, 0o640)
  await t.rejects(spawnRelay(['--data-dir', join(dir, 'data'), '--access-keys-file', keysFile, '--http-port', '0', '--mqtt-port', '0']), { message: new RegExp(`accessKeysFile: ${keysFile} has mode 0640: .*chmod 600 ${keysFile}`) })
})

t.test('the relay process started with umask 002 leaves its data directory private (directories 0700, files 0600, meta.db-wal too)', async (t) => {
  const dir = tempDir(t)
  const keysFile = join(dir, 'access-keys')
  writeKeys(keysFile, `${ONE.accessKeyId}:${ONE.secretAccessKey}\n`)
  const dataDir = join(dir, 'data')
  const umask = process.umask(0o002) // inherited by the child: files 0664, directories 0775 unless the relay sets its own
  t.teardown(() => { process.umask(umask) })
  const relay = await relayWithKeysFile(t, keysFile, dataDir)
  const kinesis = client(t, relay.endpoint, ONE)
  await kinesis.call('CreateStream', { StreamName: 's', ShardCount: 2 })
  await kinesis.call('PutRecords', { StreamName: 's', Records: Array.from({ length: 10 }, (_, i) => ({ PartitionKey: `k${i}`, Data: 'eA==' })) })
  const entries = readdirSync(dataDir, { withFileTypes: true, recursive: true })
  t.ok(entries.some((e) => e.name === 'meta.db-wal') && entries.some((e) => e.name.endsWith('.log')), 'meta.db-wal and segments are there')
  for (const e of entries) {
    const path = join(e.parentPath, e.name)
    t.equal(lstatSync(path).mode & 0o777, e.isDirectory() ? 0o700 : 0o600, path.slice(dataDir.length))
  }
  t.equal(lstatSync(dataDir).mode & 0o777, 0o700, 'the data directory itself')
})
