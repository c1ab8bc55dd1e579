/**
 * The agent's outbox on a file system that fills up and then gets room again (issue 19): records
 * are refused with a message that says the disk is full (not the outbox's cap), nothing already
 * stored is dropped or lost, the DISK_FULL alarm is raised, and writes are taken again as soon as
 * there is room, with no restart. A real tmpfs, mounted for the test (needs root).
 */
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { Outbox } from '../../agent/outbox/outbox.js'
import { tempDir } from '../helpers/tmp.js'

const root = process.getuid?.() === 0

t.test('a full disk refuses new records and keeps every stored one; room again takes writes at once', { skip: root ? false : 'needs root to mount a tmpfs' }, async (t) => {
  const dir = join(tempDir(t), 'outbox')
  mkdirSync(dir)
  if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=2m,mode=0700', 'tmpfs', dir]).status !== 0) return t.fail('mount -t tmpfs failed')
  t.teardown(() => { spawnSync('umount', ['-l', dir]) })
  const lines: { event: string; fields: Record<string, unknown> }[] = []
  const open = () => new Outbox({ path: join(dir, 'outbox.db'), maxBytes: 64 << 20, synchronous: 'FULL', commitIntervalMs: 5, commitRows: 1000, policies: {}, log: (event, fields = {}) => { lines.push({ event, fields }) } })
  let box = open()
  const stored: string[] = []
  let refusal: Error | null = null
  for (let i = 0; i < 5000 && !refusal; i++) {
    const rows = Array.from({ length: 10 }, (_, j) => ({ stream: 's', partitionKey: 'k', data: Buffer.from(`${i}-${j}-${'x'.repeat(200)}`) }))
    try {
      await box.enqueue(rows)
      stored.push(...rows.map((r) => r.data.toString()))
    } catch (err) {
      refusal = err as Error
    }
  }
  t.ok(refusal, `refused after ${stored.length} records`)
  t.match(refusal, { code: 'STORAGE_FULL', message: /file system holding the outbox is full.*nothing stored is lost/ }, 'says the disk is full, not the cap')
  t.same(box.alarms.map((a) => a.code), ['DISK_FULL'], 'the DISK_FULL alarm is raised')
  await t.rejects(box.enqueue([{ stream: 's', partitionKey: 'k', data: Buffer.from('still full') }]), { code: 'STORAGE_FULL' }, 'still refused while full')
  t.equal(lines.filter((l) => l.event === 'outbox_refused_disk_full').length, 1, 'logged once, not once per refusal')
  t.same(box.stats().drops, [], 'nothing was dropped to make room')
  t.equal(box.backlog(), stored.length, 'every stored record is still there')

  t.equal(spawnSync('mount', ['-o', 'remount,size=8m', dir]).status, 0, 'the file system grown')
  const grown = performance.now()
  const after = Array.from({ length: 10 }, (_, j) => ({ stream: 's', partitionKey: 'k', data: Buffer.from(`after-${j}`) }))
  await box.enqueue(after)
  t.ok(true, `writes taken again ${(performance.now() - grown).toFixed(0)} ms after the space returned`)
  stored.push(...after.map((r) => r.data.toString()))
  t.same(box.alarms, [], 'the alarm is cleared')
  t.match(lines.find((l) => l.event === 'outbox_disk_room_again')?.fields, { afterMs: Number })

  // Reopened (a restart): exactly what was stored, in order.
  box.close()
  box = open()
  t.teardown(() => box.close())
  const read: string[] = []
  for (let batch = box.formBatch(500, 1 << 20); batch; batch = box.formBatch(500, 1 << 20)) read.push(...box.rows(batch).map((r) => r.data.toString()))
  t.equal(read.length, stored.length, `${read.length} records after a reopen`)
  t.same(read, stored, 'every stored record, in order, none refused')
})
