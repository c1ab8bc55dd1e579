/**
 * The console in a real browser (Debian's headless `chromium` driven by playwright-core, kept off the
 * network).
 * - Devices: sign in with the admin token, see a real agent online with its serial-free put API, kill
 *   -9 it and see it offline within 10 s (its MQTT will, pushed to the page), start it again on the
 *   same outbox and see it online with its backlog drained; add a device and connect with its secret.
 * - Streams: the shard picture after a split, the charts after a step, the live tail, a reader's lag.
 * - Cameras: a real agent's synthetic camera gets a tile whose still changes as video arrives; the
 *   tile opens the player.
 * - Delivery: a delivery stream's records delivered, and one whose sink fails with its failures.
 * Every page passes axe-core's serious and critical checks, light and dark. Screenshots at 1280×800
 * are saved under .ci/out/screenshots when that folder can be made.
 */
import t, { type Test } from 'tap'
import { mkdirSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import type { Page } from 'playwright-core'
import { chromiumMissing, launchChromium, until } from '../helpers/browser.js'
import { KinesisClient, PutRecordCommand, PutRecordsCommand, SplitShardCommand } from '@aws-sdk/client-kinesis'
import { CreateDeliveryStreamCommand, FirehoseClient, PutRecordBatchCommand } from '@aws-sdk/client-firehose'
import { writeFileSync } from 'node:fs'
import { ROOT, testRelay } from '../helpers/relay.js'
import { putRecords, spawnAgent, writeAgentConfig } from '../helpers/agent.js'
import { tempDir } from '../helpers/tmp.js'
import mqtt from 'mqtt'
import { topics } from '../../shared/topics.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

interface Row { id: string; online: boolean | null; backlog: number | null }
declare const window: { devicesPage: { rows: Row[]; updates: number } }

/**
 * axe-core's serious and critical violations on the page as it is now, each as "rule: the elements".
 * Run through DevTools' evaluate, which the page's Content-Security-Policy does not govern.
 */
async function seriousViolations(page: Page): Promise<string[]> {
  await page.evaluate(readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8'))
  const violations = await page.evaluate(async () => {
    const axe = (globalThis as unknown as { axe: { run(): Promise<{ violations: { id: string; impact: string; nodes: { target: string[] }[] }[] }> } }).axe
    return (await axe.run()).violations
  })
  return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`)
}

/** A browser page signed in to the console, its script errors collected, and a screenshot taker. */
async function signedIn(t: Test, dir: string, relay: { endpoint: string; adminToken: string }, first: string) {
  const context = await launchChromium(t, dir, { viewport: { width: 1280, height: 800 } })
  const page: Page = await context.newPage()
  const errors: string[] = []
  page.on('pageerror', (err) => errors.push(err.message))
  await page.goto(`${relay.endpoint}${first}`)
  await page.fill('#token', relay.adminToken)
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')])
  return { page, errors }
}

async function screenshot(page: Page, name: string): Promise<void> {
  const shots = join(ROOT, '.ci', 'out', 'screenshots')
  try { mkdirSync(shots, { recursive: true }) } catch { return }
  await page.screenshot({ path: join(shots, `${name}.png`) })
}

t.test('the devices page shows an agent go offline within 10 s of kill -9 and back online, drained, after its restart', { skip: chromiumMissing }, async (t) => {
  const dir = tempDir(t)
  const relay = await testRelay(t, { allowAnonymous: false, httpHost: '127.0.0.1' })
  const added = await fetch(`${relay.endpoint}/admin/devices`, { method: 'POST', headers: { authorization: `Bearer ${relay.adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ id: 'well-3' }) })
  const { secret } = (await added.json()) as { secret: string }
  const config = writeAgentConfig(dir, {
    device: 'well-3',
    relay: { url: `mqtt://127.0.0.1:${relay.mqttPort}`, username: 'well-3', password: secret },
    outbox: { path: join(dir, 'agent', 'outbox.db') },
    status: { port: 0, publishIntervalMs: 1000 },
    streams: { readings: {} },
    sources: [{ type: 'put-api', port: 0 }],
    // A backlog drains slowly enough for the page to watch it go.
    uplink: { drainRatePerSecond: 100, batchRecords: 50 },
  })
  let agent = await spawnAgent(config)
  t.teardown(() => { agent.process.kill('SIGKILL') })

  const context = await launchChromium(t, dir, { viewport: { width: 1280, height: 800 } })
  const page: Page = await context.newPage()
  const pageErrors: string[] = []
  page.on('pageerror', (err) => pageErrors.push(err.message))

  await page.goto(`${relay.endpoint}/console/devices`)
  await screenshot(page, 'console-login')
  t.same(await seriousViolations(page), [], 'the login page: no serious or critical accessibility violations (axe-core)')
  await page.fill('#token', relay.adminToken)
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')])
  await page.waitForSelector('#devices tbody tr[data-device="well-3"]')
  const state = () => page.evaluate(() => window.devicesPage.rows.find((r) => r.id === 'well-3') ?? null)
  await until('well-3 shows online', async () => (await state())?.online === true, 15_000)
  t.match(await page.textContent('#devices tbody tr[data-device="well-3"] .state'), 'online', 'the row says online')
  const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version
  t.match(await page.textContent('#devices tbody tr[data-device="well-3"]'), version, `the row shows the agent's version (${version})`)
  await screenshot(page, 'console-devices')

  // kill -9: no goodbye from the agent; the broker publishes its will when the connection drops.
  const killedAt = Date.now()
  agent.process.kill('SIGKILL')
  await agent.exited
  await until('well-3 shows offline', async () => (await state())?.online === false, 10_000)
  const offlineAfter = Date.now() - killedAt
  t.ok(offlineAfter <= 10_000, `offline on the page ${offlineAfter} ms after kill -9`)
  t.match(await page.textContent('#devices tbody tr[data-device="well-3"] .state'), 'offline')
  await screenshot(page, 'console-device-offline')

  // It comes back on the same outbox, takes a backlog and drains it (100 records/s) while the page watches.
  agent = await spawnAgent(config)
  for (let n = 0; n < 6; n++) {
    const put = await putRecords(agent.putApiPort!, 'readings', Array.from({ length: 100 }, (_, i) => ({ key: `k${i}`, data: `r${n}-${i}` })))
    t.equal(put.status, 200)
  }
  const behind = await until('well-3 shows a backlog', async () => {
    const s = await state()
    return s?.online === true && (s.backlog ?? 0) > 0 ? s : null
  }, 15_000)
  t.ok(behind.backlog! > 0, `the page shows its backlog (${behind.backlog} records)`)
  await screenshot(page, 'console-device-draining')
  const back = await until('well-3 online and drained', async () => {
    const s = await state()
    return s?.online === true && s.backlog === 0 ? s : null
  }, 30_000)
  t.same([back.online, back.backlog], [true, 0], 'online again, backlog drained')
  const updates = await page.evaluate(() => window.devicesPage.updates)
  t.ok(updates >= 3, `the page was told of the changes (pushed, not polled): ${updates} pushes`)

  // A device added from the page connects with the secret the page showed (once).
  await page.fill('#new-id', 'well-4')
  await page.click('#add-device button[type=submit]')
  await page.waitForSelector('#secret:not([hidden])')
  const shown = (await page.textContent('#secret-value'))!.trim()
  t.match(shown, /^[A-Za-z0-9_-]{32}$/, 'the new secret is shown')
  await screenshot(page, 'console-device-added')
  await page.click('#secret-done')
  t.equal((await page.textContent('#secret-value'))!.trim(), '', 'and forgotten by the page when dismissed')
  const second = await spawnAgent(writeAgentConfig(dir, {
    device: 'well-4',
    relay: { url: `mqtt://127.0.0.1:${relay.mqttPort}`, username: 'well-4', password: shown },
    outbox: { path: join(dir, 'agent-4', 'outbox.db') },
    status: { port: 0 },
    streams: {},
    sources: [{ type: 'put-api', port: 0 }],
  }))
  t.teardown(() => { second.process.kill('SIGKILL') })
  await until('well-4 online', async () => (await page.evaluate(() => window.devicesPage.rows.find((r) => r.id === 'well-4') ?? null))?.online === true, 15_000)
  t.pass('the device added from the page is online with the secret it showed')

  // Sorting and filtering.
  await page.fill('#filter', 'nothing-matches')
  t.equal(await page.locator('#devices tbody tr').count(), 0, 'a filter with no match shows no rows')
  await page.fill('#filter', 'well-3')
  t.equal(await page.locator('#devices tbody tr').count(), 1)
  await page.fill('#filter', '')
  await page.click('#devices th[data-key="id"] button')
  t.same(await page.locator('#devices tbody tr').evaluateAll((rows) => rows.map((r) => (r as unknown as { dataset: { device: string } }).dataset.device)), ['well-4', 'well-3'], 'sorted by device, descending')
  t.same(await seriousViolations(page), [], 'the devices page: no serious or critical accessibility violations (axe-core)')
  // Dark follows the system's setting: the same checks on the dark page.
  await page.emulateMedia({ colorScheme: 'dark' })
  await screenshot(page, 'console-devices-dark')
  t.same(await seriousViolations(page), [], 'the devices page, dark: no serious or critical accessibility violations')
  await page.emulateMedia({ colorScheme: 'light' })

  // The streams page: the stream the agent's records went to, its shards' picture, and the chart of
  // its incoming records once the relay's ten-second step has passed (pushed).
  await page.goto(`${relay.endpoint}/console/streams`)
  await page.waitForSelector('section.stream[data-stream="readings"] .shard')
  const shardBoxes = await page.locator('section.stream[data-stream="readings"] .shard').count()
  t.ok(shardBoxes >= 1, `the shard picture draws ${shardBoxes} shards`)
  const stepped = await until('a rates step with the drained records', () => page.evaluate(() => {
    const p = (window as unknown as { streamsPage: { updates: number; streams: { name: string; incoming: { recordsPerSecond: number[] } }[] } }).streamsPage
    const s = p.streams.find((x) => x.name === 'readings')
    return p.updates > 0 && s && s.incoming.recordsPerSecond.some((v) => v > 0) ? s.incoming.recordsPerSecond : null
  }), 25_000)
  t.ok(stepped.some((v) => v > 0), 'the chart has the records that flowed')
  t.match(await page.getAttribute('section.stream[data-stream="readings"] svg.chart', 'aria-label'), /records per second/)
  t.ok(await page.locator('section.stream[data-stream="readings"] svg.chart rect').count() > 0, 'the chart draws the steps with records')
  // The live tail: a record put through the AWS SDK shows within 2 s.
  await page.click('section.stream[data-stream="readings"] button')
  await page.waitForSelector('#tail:not([hidden])')
  await sleep(400)
  const kinesis = new KinesisClient({ endpoint: relay.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' }, maxAttempts: 1 })
  t.teardown(() => kinesis.destroy())
  const putAt = Date.now()
  await kinesis.send(new PutRecordCommand({ StreamName: 'readings', PartitionKey: 'console', Data: Buffer.from('seen on the tail') }))
  await page.waitForSelector('#tail-records li:has-text("seen on the tail")', { timeout: 2000 })
  t.ok(Date.now() - putAt <= 2000, `the tail showed the record ${Date.now() - putAt} ms after the SDK's put`)
  await page.check('#tail-hex')
  t.match(await page.textContent('#tail-records li'), /73 65 65 6e/, 'and as hex')
  // A split shows in the shard picture (by the next step's push at the latest): the parent closed
  // below, two children above covering its range.
  await page.click('#tail-stop')
  await kinesis.send(new SplitShardCommand({ StreamName: 'readings', ShardToSplit: 'shardId-000000000000', NewStartingHashKey: (1n << 127n).toString() }))
  await until('the split in the picture', async () => (await page.locator('section.stream[data-stream="readings"] .shard').count()) === 3, 15_000)
  t.equal(await page.locator('section.stream[data-stream="readings"] .shard.closed').count(), 1, 'the split shard is drawn closed, its two children open')
  await screenshot(page, 'console-streams')
  t.same(await seriousViolations(page), [], 'the streams page: no serious or critical accessibility violations')
  t.same(pageErrors, [], 'no script errors on the pages')
})

t.test('the cameras page shows a live camera whose tile updates and opens the player; the delivery page shows deliveries and failures; a reader\'s lag shows', { skip: chromiumMissing }, async (t) => {
  const dir = tempDir(t)
  const broken = join(dir, 'a-file')
  writeFileSync(broken, 'not a directory')
  const deliveryFile = join(dir, 'delivery.json')
  writeFileSync(deliveryFile, JSON.stringify({ buckets: { landing: { type: 'files', directory: join(dir, 'landing') }, broken: { type: 'files', directory: join(broken, 'bucket') } } }))
  const relay = await testRelay(t, { httpHost: '127.0.0.1', deliveryFile })
  const credentials = { accessKeyId: 'x', secretAccessKey: 'y' }

  // A real agent with a synthetic camera, 1 s fragments.
  const agent = await spawnAgent(writeAgentConfig(dir, {
    device: 'gate-1',
    relay: { url: `mqtt://127.0.0.1:${relay.mqttPort}` },
    outbox: { path: join(dir, 'agent', 'outbox.db') },
    status: { port: 0 },
    streams: {},
    sources: [{ type: 'camera', name: 'gate', stream: 'gate-cam', input: 'synthetic', width: 320, height: 240, fps: 10, bitrateKbps: 300, fragmentMs: 1000 }],
  }))
  t.teardown(() => { agent.process.kill('SIGKILL') })

  const { page, errors } = await signedIn(t, dir, relay, '/console/cameras')
  const camerasPage = () => page.evaluate(() => (window as unknown as { camerasPage: { images: Record<string, number>; refreshes: number } }).camerasPage)
  await page.waitForSelector('.tile[data-camera="gate-cam"]', { timeout: 20_000 })
  await until('a first still of the camera', async () => ((await camerasPage()).images['gate-cam'] ?? 0) >= 1, 20_000)
  const firstStill = await page.getAttribute('.tile[data-camera="gate-cam"] img', 'src')
  await until('the tile to update with newer video', async () => ((await camerasPage()).images['gate-cam'] ?? 0) >= 2, 20_000)
  t.not(await page.getAttribute('.tile[data-camera="gate-cam"] img', 'src'), firstStill, 'the tile shows a newer still as video arrives')
  t.match(await page.textContent('.tile[data-camera="gate-cam"] .tile-caption'), /gate-1 · video \d+ s ago/, 'the device and how fresh its video is')
  t.notOk(await page.locator('.tile[data-camera="gate-cam"].stale').count(), 'not stale while it sends')
  await screenshot(page, 'console-cameras')
  t.same(await seriousViolations(page), [], 'the cameras page: no serious or critical accessibility violations')
  await page.emulateMedia({ colorScheme: 'dark' })
  await screenshot(page, 'console-cameras-dark')
  t.same(await seriousViolations(page), [], 'the cameras page, dark: no serious or critical accessibility violations')
  await page.emulateMedia({ colorScheme: 'light' })
  // The tile opens the player, LIVE.
  await Promise.all([page.waitForNavigation(), page.click('.tile[data-camera="gate-cam"]')])
  t.match(page.url(), /\/console\/video\?stream=gate-cam&mode=LIVE$/)
  await until('the player to load fragments', () => page.evaluate(() => (window as unknown as { viewer: { fragmentsLoaded: number } }).viewer.fragmentsLoaded > 0), 20_000)
  t.pass('the player plays the camera LIVE')
  await screenshot(page, 'console-video')
  t.same(await seriousViolations(page), [], 'the player page: no serious or critical accessibility violations')

  // Delivery: one stream delivering into a directory, one whose directory cannot be made.
  const firehose = new FirehoseClient({ endpoint: relay.endpoint, region: 'us-east-1', credentials, maxAttempts: 1 })
  t.teardown(() => firehose.destroy())
  for (const [name, bucket] of [['to-landing', 'landing'], ['to-broken', 'broken']]) {
    await firehose.send(new CreateDeliveryStreamCommand({
      DeliveryStreamName: name, DeliveryStreamType: 'DirectPut',
      ExtendedS3DestinationConfiguration: { RoleARN: 'arn:aws:iam::000000000000:role/firehose', BucketARN: `arn:aws:s3:::${bucket}`, BufferingHints: { SizeInMBs: 1, IntervalInSeconds: 0 } },
    }))
    await firehose.send(new PutRecordBatchCommand({ DeliveryStreamName: name, Records: Array.from({ length: 30 }, (_, i) => ({ Data: Buffer.from(`{"n":${i}}\n`) })) }))
  }
  await page.goto(`${relay.endpoint}/console/delivery`)
  await page.waitForSelector('#deliveries tr[data-delivery="to-landing"]')
  const deliveryRow = (name: string) => page.evaluate((n) => (window as unknown as { deliveryPage: { deliveries: { name: string; recordsDelivered: number; failuresByCode: Record<string, number> }[] } }).deliveryPage.deliveries.find((d) => d.name === n), name)
  // Pushed at the relay's next ten-second step.
  await until('the deliveries and the failures on the page', async () => (await deliveryRow('to-landing'))?.recordsDelivered === 30 && Object.keys((await deliveryRow('to-broken'))?.failuresByCode ?? {}).length > 0, 25_000)
  t.match(await page.textContent('#deliveries tr[data-delivery="to-landing"]'), /caught up.*30 \(/, 'delivered and caught up')
  t.match(await page.textContent('#deliveries tr[data-delivery="to-broken"]'), /Files\.WriteFailed: \d+/, 'the failing one shows its failures by code')
  t.match(await page.textContent('#deliveries tr[data-delivery="to-broken"]'), /last: Files\.WriteFailed/, 'and its last error')
  await screenshot(page, 'console-delivery')
  t.same(await seriousViolations(page), [], 'the delivery page: no serious or critical accessibility violations')
  await page.emulateMedia({ colorScheme: 'dark' })
  t.same(await seriousViolations(page), [], 'the delivery page, dark: no serious or critical accessibility violations')
  await page.emulateMedia({ colorScheme: 'light' })

  // A reader's lag on the streams page: a consumer checkpointed at the first of 50 records.
  const kinesis = new KinesisClient({ endpoint: relay.endpoint, region: 'us-east-1', credentials, maxAttempts: 1 })
  t.teardown(() => kinesis.destroy())
  const put = await kinesis.send(new PutRecordsCommand({ StreamName: 'firehose.to-landing', Records: Array.from({ length: 50 }, (_, i) => ({ PartitionKey: `k${i}`, Data: Buffer.from(`{"m":${i}}`) })) }))
  const first = put.Records!.find((r) => r.ShardId === 'shardId-000000000000')!
  const behind = put.Records!.filter((r) => r.ShardId === first.ShardId).length - 1
  t.equal((await fetch(`${relay.endpoint}/checkpoints/firehose.to-landing/dashboard/${first.ShardId}`, { method: 'PUT', body: JSON.stringify({ SequenceNumber: first.SequenceNumber }) })).status, 200)
  await page.goto(`${relay.endpoint}/console/streams`)
  const dashboard = 'section.stream[data-stream="firehose.to-landing"] table.readers tr[data-consumer="dashboard"]'
  await page.waitForSelector(dashboard)
  t.match(await page.textContent(dashboard), new RegExp(`checkpoints.*ACTIVE.*1.*${behind}`), `the reader ${behind} records behind`)
  t.ok(await page.locator('section.stream[data-stream="firehose.to-landing"] table.readers tr[data-consumer="to-landing"]').count(), 'the delivery stream is a reader of its backing stream')
  t.ok(await page.locator('section.stream[data-stream="firehose.to-landing"] svg.chart.bytes-per-second').count(), 'and the bytes per second chart is drawn')
  await screenshot(page, 'console-streams-readers')
  await page.emulateMedia({ colorScheme: 'dark' })
  await screenshot(page, 'console-streams-dark')
  t.same(await seriousViolations(page), [], 'the streams page, dark: no serious or critical accessibility violations')
  t.same(errors, [], 'no script errors on the pages')
})

t.test('1,000 devices: listed, sorted by backlog and filtered on the page', { skip: chromiumMissing }, async (t) => {
  const dir = tempDir(t)
  const relay = await testRelay(t, { httpHost: '127.0.0.1', allowAnonymous: true })
  const ids = Array.from({ length: 1000 }, (_, i) => `site-${String(i).padStart(4, '0')}`)
  // Each device's retained status, as its agent publishes it (backlog i × 7 mod 1,000: no two alike).
  for (let at = 0; at < ids.length; at += 50) {
    await Promise.all(ids.slice(at, at + 50).map(async (id, k) => {
      const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${relay.mqttPort}`, { clientId: id, reconnectPeriod: 0 })
      const backlog = ((at + k) * 7) % 1000
      await client.publishAsync(topics.status(id), JSON.stringify({ device: id, online: true, version: '0.1.0', outbox: { backlog } }), { qos: 1, retain: true })
      await client.endAsync()
    }))
  }
  const { page, errors } = await signedIn(t, dir, relay, '/console/devices')
  const shown = () => page.evaluate(() => document.querySelectorAll('#devices tbody tr').length)
  await until('1,000 rows', async () => (await shown()) === 1000, 20_000)
  t.pass('the page lists all 1,000 devices')
  // Sorted twice (ascending, then descending), timed in the page: the sort, the rows and their layout.
  const sortMs = await page.evaluate(() => {
    const started = performance.now()
    const button = document.querySelector<HTMLButtonElement>('#devices th[data-key="backlog"] button')!
    button.click()
    button.click()
    void document.body.offsetHeight
    return performance.now() - started
  })
  t.comment(`two sorts of 1,000 rows, drawn and laid out, in ${Math.round(sortMs)} ms`)
  t.equal(await page.getAttribute('#devices tbody tr:first-child', 'data-device'), ids[ids.findIndex((_, i) => (i * 7) % 1000 === 999)], 'sorted by backlog, descending: the largest first')
  t.equal(await page.getAttribute('#devices th[data-key="backlog"]', 'aria-sort'), 'descending')
  await page.fill('#filter', 'site-0420')
  t.equal(await shown(), 1, 'the filter finds one device among 1,000')
  t.match(await page.textContent('#summary'), /1,?000 devices, 1,?000 online, 1 shown/)
  await page.fill('#filter', '')
  await screenshot(page, 'console-devices-1000')
  t.same(errors, [], 'no script errors')
})
