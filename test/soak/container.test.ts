/**
 * The relay as a container (relay/Dockerfile), as a user runs it: the image builds (on base images
 * made from this machine's own files, as no registry is reachable here; the CA bundle passed as a
 * build secret), runs as non-root, answers /healthz and becomes healthy, takes a device's MQTT batch
 * and a PutRecords from the AWS SDK (settings from environment variables only), stops on `docker
 * stop` by its own SIGTERM handling (exit 0, not Docker's SIGKILL after 10 s), and started again on
 * the same volume serves the same records.
 */
import t, { type Test } from 'tap'
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { DescribeStreamSummaryCommand, KinesisClient as SdkKinesis, PutRecordsCommand } from '@aws-sdk/client-kinesis'
import { NodeHttpHandler } from '@smithy/node-http-handler'
import mqtt from 'mqtt'
import { codec } from '../../hardware/index.js'
import { topics } from '../../shared/topics.js'
import { dockerMissing, startDocker, type Docker } from '../helpers/docker.js'
import { readStream } from '../helpers/kinesis.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const HOST_IMAGE = fileURLToPath(new URL('../helpers/host-image.sh', import.meta.url))
const CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt'
const IMAGE = 'tributary-relay:test'
const KEY = { accessKeyId: 'AKIDCONTAINER', secretAccessKey: 'container-secret-0123456789' }
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const missing = dockerMissing()
t.setTimeout(1_200_000)
t.test('the relay image builds, runs as non-root, keeps its records across docker stop and start', { skip: missing ? `the container tier needs Docker: ${missing}` : false, timeout: 1_200_000 }, async (t) => {
  const docker = await startDocker(t)
  const hostImage = (kind: string, tag: string) => new Promise<void>((resolve, reject) => {
    execFile('bash', [HOST_IMAGE, kind, tag], { env: { ...process.env, DOCKER_HOST: docker.host, PATH: `/usr/bin:${process.env.PATH}` }, timeout: 300_000 }, (err, _out, stderr) => err ? reject(new Error(`host-image.sh ${kind}: ${stderr}`)) : resolve())
  })
  t.comment('making the base images from this machine\'s files')
  await Promise.all([hostImage('build', 'local/tributary-build'), hostImage('runtime', 'local/tributary-runtime')])
  const secret = ['--secret', `id=ca,src=${CA_BUNDLE}`]
  t.comment('building relay/Dockerfile (npm ci and the addon inside the build)')
  await docker.run(['build', '-q', ...secret, '--build-arg', 'BASE=local/tributary-build', '--build-arg', 'RUNTIME_BASE=local/tributary-runtime', '-f', 'relay/Dockerfile', '-t', IMAGE, ROOT], { timeoutMs: 900_000 })

  const config = JSON.parse(await docker.run(['image', 'inspect', '-f', '{{json .Config}}', IMAGE])) as { User: string; ExposedPorts: Record<string, unknown>; Volumes: Record<string, unknown>; Healthcheck?: { Test: string[] } }
  t.equal(config.User, 'node', 'the image runs as the node user')
  t.same(Object.keys(config.ExposedPorts).sort(), ['1883/tcp', '4567/tcp', '8883/tcp'], 'MQTT, MQTT over TLS and HTTP exposed')
  t.same(Object.keys(config.Volumes), ['/data'], '/data is the volume')
  t.match(config.Healthcheck?.Test.join(' '), /healthcheck/, 'a HEALTHCHECK runs tributary healthcheck')
  t.equal((await docker.run(['run', '--rm', '--entrypoint', 'id', IMAGE, '-u'])).trim(), '1000', 'the process is uid 1000, not root')
  const size = Number((await docker.run(['image', 'inspect', '-f', '{{.Size}}', IMAGE])).trim())
  const baseSize = Number((await docker.run(['image', 'inspect', '-f', '{{.Size}}', 'local/tributary-runtime'])).trim())
  t.comment(`image ${IMAGE}: ${(size / 1e6).toFixed(0)} MB, of which the runtime base (Node.js, ffmpeg, tini from this machine) ${(baseSize / 1e6).toFixed(0)} MB`)

  await docker.run(['volume', 'create', 'tributary-data'])
  // Every setting from the environment, as the README's table says.
  await docker.run(['create', '--name', 'relay', '-v', 'tributary-data:/data', '-p', '127.0.0.1::1883', '-p', '127.0.0.1::4567',
    '-e', `TRIBUTARY_ACCESS_KEYS=${KEY.accessKeyId}:${KEY.secretAccessKey}`, '-e', 'TRIBUTARY_ALLOW_ANONYMOUS=true', '-e', 'TRIBUTARY_RETENTION_HOURS=48', IMAGE])
  t.teardown(() => docker.run(['rm', '-f', 'relay']).catch(() => {}))

  t.comment('starting the container')
  const started = await startContainer(t, docker)
  const sdk = new SdkKinesis({ endpoint: started.endpoint, region: 'us-east-1', credentials: KEY, requestHandler: new NodeHttpHandler(), maxAttempts: 1 })
  t.teardown(() => sdk.destroy())
  const device = await mqtt.connectAsync(`mqtt://127.0.0.1:${started.mqttPort}`, { clientId: 'cam-1', protocolVersion: 4, reconnectPeriod: 0 })
  const batch = codec.encodeBatch({ epoch: 7n, sequence: 0, records: ['a', 'b', 'c'].map((v) => ({ partitionKey: `k-${v}`, data: Buffer.from(`device ${v}`), producerTimeMs: Date.now(), clockSynced: true })) })
  await device.publishAsync(topics.records('cam-1', 'readings'), batch, { qos: 1 })
  await device.endAsync()
  const answer = await sdk.send(new PutRecordsCommand({ StreamName: 'readings', Records: [{ PartitionKey: 'sdk', Data: Buffer.from('from the sdk') }] }))
  t.equal(answer.FailedRecordCount, 0, 'PutRecords through the AWS SDK, signed with the key the environment gave the relay')
  const before = await readStream(started.endpoint, 'readings', KEY)
  t.same(before.map((r) => r.data).sort(), ['device a', 'device b', 'device c', 'from the sdk'], 'the batch (acknowledged by its PUBACK) and the put are readable')
  const description = await sdk.send(new DescribeStreamSummaryCommand({ StreamName: 'readings' }))
  t.equal(description.StreamDescriptionSummary?.RetentionPeriodHours, 48, 'TRIBUTARY_RETENTION_HOURS reached the relay')
  // The console's scripts were built into the image (esbuild, a development dependency, is not in it).
  for (const asset of ['devices.js', 'streams.js', 'cameras.js', 'console.css']) {
    const r = await fetch(`${started.endpoint}/console/assets/${asset}`)
    t.equal(r.status, 200, `the console's ${asset} is served from the image`)
    t.ok((await r.text()).length > 200, `and is not empty (${asset})`)
  }

  t.comment('waiting for the HEALTHCHECK')
  await waitHealthy(t, docker)
  await docker.run(['stop', 'relay'], { timeoutMs: 60_000 })
  const state = JSON.parse(await docker.run(['inspect', '-f', '{{json .State}}', 'relay'])) as { ExitCode: number }
  t.equal(state.ExitCode, 0, 'docker stop: the relay shut down on SIGTERM by itself (exit 0), before Docker\'s 10 s SIGKILL (137)')
  const logs = await docker.run(['logs', 'relay'])
  t.match(logs, /tributary relay stopping \(SIGTERM\)/, 'the relay logged its SIGTERM')

  t.comment('starting it again on the same volume')
  const again = await startContainer(t, docker)
  const after = await readStream(again.endpoint, 'readings', KEY)
  t.same(after, before, 'started again on the same volume, the relay serves the same records with the same sequence numbers')
})

/** Starts the container and waits until its HTTP port answers; its published ports. */
async function startContainer(t: Test, docker: Docker): Promise<{ endpoint: string; mqttPort: number }> {
  await docker.run(['start', 'relay'])
  const port = async (inner: number) => Number(/:(\d+)\s*$/m.exec(await docker.run(['port', 'relay', `${inner}/tcp`]))?.[1])
  const http = await port(4567)
  const mqttPort = await port(1883)
  const endpoint = `http://127.0.0.1:${http}`
  for (let i = 0; i < 150; i++) {
    try {
      const res = await fetch(`${endpoint}/healthz`, { signal: AbortSignal.timeout(2000) })
      if (res.status === 200) return { endpoint, mqttPort }
    } catch { /* not listening yet */ }
    await sleep(200)
  }
  t.fail(`the relay did not answer /healthz: ${await docker.run(['logs', 'relay']).catch((e: Error) => e.message)}`)
  throw new Error('no /healthz')
}

/** Waits for Docker's HEALTHCHECK (interval 10 s) to call the container healthy. */
async function waitHealthy(t: Test, docker: Docker): Promise<void> {
  let status = ''
  for (let i = 0; i < 60; i++) {
    status = (await docker.run(['inspect', '-f', '{{.State.Health.Status}}', 'relay'])).trim()
    if (status === 'healthy') break
    await sleep(1000)
  }
  t.equal(status, 'healthy', 'Docker\'s HEALTHCHECK (tributary healthcheck against /healthz) calls it healthy')
}
