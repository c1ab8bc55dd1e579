/**
 * PutRecords' one-pass parser (relay/kinesis/putrecords-parse.ts) never answers differently from the
 * general path (JSON.parse + validate): on thousands of generated bodies — valid ones and mutated
 * ones — whatever it accepts the general path accepts with the same records, and over real HTTP a
 * relay with the fast path on gives the same status, error and stored records as one with it off.
 */
import t from 'tap'
import { BATCH_KEY_LENGTH, BATCH_KEY_START, BATCH_STRIDE } from '../../hardware/index.js'
import { json } from '../../relay/kinesis/protocol.js'
import { validate } from '../../relay/kinesis/validate.js'
import { checkReservedMembers } from '../../relay/kinesis/reserved.js'
import { PUT_RECORDS_FIELDS } from '../../relay/kinesis/actions/put.js'
import { fastPut, parsePutRecords, type PutEntry } from '../../relay/kinesis/putrecords-parse.js'
import { testRelay } from '../helpers/relay.js'
import { seeded } from '../helpers/random.js'

const AMZ_JSON = 'application/x-amz-json-1.1'
const MAX_HASH_KEY = ((1n << 128n) - 1n).toString()
const ARN = 'arn:aws:kinesis:us-east-1:000000000000:stream/s'

// The same bodies on every run.
const rand = seeded(17)
const int = (n: number) => Math.floor(rand() * n)
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!
const chance = (p: number) => rand() < p

const ws = () => (chance(0.7) ? '' : pick([' ', '\n', '\t', ' \r\n  ', '  ']))
/** A JSON string, some characters written as escapes. */
function str(s: string): string {
  let out = '"'
  const escapeSome = chance(0.2)
  for (const ch of s) {
    for (let i = 0; i < ch.length; i++) {
      const c = ch.charCodeAt(i)
      if (c === 0x22 || c === 0x5c || c < 0x20 || (c >= 0xd800 && c <= 0xdfff && ch.length === 1)) out += `\\u${c.toString(16).padStart(4, '0')}`
      else if (escapeSome && chance(0.2)) out += pick([`\\u${c.toString(16).padStart(4, '0')}`, `\\u${c.toString(16).toUpperCase().padStart(4, '0')}`, c === 0x2f ? '\\/' : ch[i]!])
      else out += ch[i]
    }
  }
  return out + '"'
}

type Members = [string, string][]
const obj = (m: Members) => `{${ws()}${m.map(([k, v]) => `${ws()}${chance(0.03) ? str(k) : JSON.stringify(k)}${ws()}:${ws()}${v}${ws()}`).join(',')}}`
const arr = (xs: string[]) => `[${ws()}${xs.map((x) => `${ws()}${x}${ws()}`).join(',')}]`
const shuffle = <T>(xs: T[]): T[] => { for (let i = xs.length - 1; i > 0; i--) { const j = int(i + 1); [xs[i], xs[j]] = [xs[j]!, xs[i]!] } return xs }

const KEY_CHARS = ['a', 'Z', '0', '-', '/', ' ', 'é', '中', '😀', '\u0000', '\u001f', '"', '\\', '\ud800', '\udfff', '\u2028']
function key(): string {
  const n = 1 + int(12)
  let s = ''
  for (let i = 0; i < n; i++) s += chance(0.6) ? pick(['a', 'b', 'k', '1', '7']) : pick(KEY_CHARS)
  return s
}
function bytes(n: number): Buffer {
  const b = Buffer.alloc(n)
  for (let i = 0; i < n; i++) b[i] = int(256)
  return b
}
function hashKey(): string {
  return pick(['0', '1', String(int(1e9) + 1), MAX_HASH_KEY, (BigInt(MAX_HASH_KEY) + 1n).toString(), '9'.repeat(39)])
}

function record(): Members {
  // Escapes in Data (rare from any SDK) are the general path's: only a few bodies carry them.
  const data = bytes(chance(0.9) ? int(41) : int(2000)).toString('base64')
  const m: Members = [['Data', chance(0.03) ? str(data) : JSON.stringify(data)], ['PartitionKey', str(key())]]
  if (chance(0.3)) m.push(['ExplicitHashKey', str(hashKey())])
  return shuffle(m)
}

const BAD_BASE64 = ['AAA', 'A===', '====', 'AB==', 'AAB=', 'A@AA', '=AAA', 'AA=A', 'QUJD\\/AAA', 'AA AA', 'QQ==QQ==', 'QUJD\\u0044', '-_AA', 'YQ', 'YWJj\\n']
const VALUES = ['null', '5', '1.5', 'true', 'false', '{}', '[]', '"x"', '""', '[1]', '{"a":1}']

/** One body: a valid request, then none, one or two mutations. */
function body(): { text: string; valid: boolean } {
  const records: Members[] = Array.from({ length: chance(0.02) ? 500 : 1 + int(5) }, record)
  let top: Members = [['StreamName', str('s')], ['Records', '']]
  if (chance(0.15)) top = [['StreamARN', str(ARN)], ['Records', '']]
  else if (chance(0.05)) top.push(['StreamARN', str(ARN)])
  const mutations = chance(0.35) ? 0 : 1 + int(2)
  let textMutation: ((s: string) => string) | null = null
  let recordsText: string | null = null
  for (let k = 0; k < mutations; k++) {
    const r = records[int(records.length)]!
    const set = (m: Members, name: string, v: string | null) => {
      const i = m.findIndex(([n]) => n === name)
      if (v === null) { if (i >= 0) m.splice(i, 1) } else if (i >= 0) m[i]![1] = v
      else m.push([name, v])
    }
    switch (int(16)) {
      case 0: set(top, 'StreamName', pick([...VALUES, str('bad name!'), str('a'.repeat(129)), str('a'.repeat(128)), str('nosuch'), str('s\n')])); break
      case 1: set(top, 'StreamARN', pick([...VALUES, str('arn:aws:kinesis:us-east-1:123:stream/s'), str(ARN.replace('/s', '/other')), str('arn:aws:kinesis:us-east-1:000000000000:stream/')])); break
      case 2: set(top, pick(['StreamName', 'StreamARN', 'Records']), null); break
      case 3: top.push(pick<[string, string]>([['Foo', '1'], ['StreamId', str('x')], ['StreamId', '5'], ['DryRun', 'true'], ['DryRun', '"yes"'], ['streamName', str('s')], ['__proto__', '{}'], ['Records', arr([])]])); break
      case 4: top.push([...pick(top)]); break
      case 5: recordsText = pick([...VALUES, arr([]), arr(Array.from({ length: 501 }, () => obj(record())))]); break
      case 6: set(r, 'Data', pick([...VALUES, ...BAD_BASE64.map((b) => `"${b}"`)])); break
      case 7: set(r, 'PartitionKey', pick([...VALUES, str('k'.repeat(256)), str('k'.repeat(257)), str('😀'.repeat(128)), str('😀'.repeat(129)), '"\\ud83d\\ude00"', '"\\u0000"'])); break
      case 8: set(r, 'ExplicitHashKey', pick([...VALUES, '"01"', '"1a"', '"-1"', `"${'1'.repeat(40)}"`, '"0"', '"\\u0031"'])); break
      case 9: set(r, pick(['Data', 'PartitionKey']), null); break
      case 10: r.push(pick<[string, string]>([['Foo', '1'], ['data', '"AAAA"'], ['SequenceNumberForOrdering', '"1"']])); break
      case 11: if (r.length) r.push([...pick(r)]); break
      case 12: r.splice(0, r.length); break
      case 13: shuffle(top); shuffle(r); break
      case 14: textMutation = pick<(s: string) => string>([
        (s) => s.slice(0, int(s.length)), (s) => s + 'x', (s) => '\ufeff' + s, (s) => `[${s}]`, (s) => s.replace(/}$/, ',}'),
        (s) => s.replace('"s"', '"s\u0001"'), (s) => s.replace('"Records"', '"Rec\\u006frds"'), (s) => s.replace(/"PartitionKey":"/, '"PartitionKey":"\\x41'),
        (s) => ` \n${s}\t `, (s) => s.replace('"Data":"', '"Data" : "'), (s) => s + '{}', (s) => s.replace('[', '[null,'),
      ]); break
      default: records.push(pick<Members>([[['Foo', '1']], []]))
    }
  }
  const recs = recordsText ?? arr(records.map((m) => obj(m)))
  const members = top.map(([k, v]): [string, string] => [k, k === 'Records' && v === '' ? recs : v]).filter(([, v]) => v !== '')
  let text = obj(chance(0.5) ? shuffle(members) : members)
  if (textMutation) text = textMutation(text)
  return { text, valid: mutations === 0 }
}

type Outcome = { ok: true; value: unknown } | { ok: false; type: string; message: string }

/** The general path as the relay runs it: decode, the reserved members, validate. */
function general(b: Buffer): Outcome {
  try {
    const request = json.decode(b)
    checkReservedMembers('PutRecords', request)
    return { ok: true, value: validate(request, PUT_RECORDS_FIELDS, 'declared') }
  } catch (err) {
    const e = err as { type?: string; message: string }
    return { ok: false, type: e.type ?? 'thrown', message: e.message }
  }
}

const plain = (v: { StreamName?: string; StreamARN?: string; Records: PutEntry[] }) => ({
  StreamName: v.StreamName, StreamARN: v.StreamARN,
  Records: v.Records.map((r) => ({ Data: r.Data.toString('hex'), PartitionKey: r.PartitionKey, ExplicitHashKey: r.ExplicitHashKey })),
})

const BODIES = Array.from({ length: 20000 }, body)

t.test('what the parser accepts, the general path accepts with the same request, on 20,000 generated bodies', async (t) => {
  let handled = 0, validHandled = 0, valid = 0, tables = 0
  const wrong: string[] = []
  for (const { text, valid: isValid } of BODIES) {
    const b = Buffer.from(text)
    const fast = parsePutRecords(b)
    if (isValid) valid++
    if (!fast) continue
    handled++
    if (isValid) validHandled++
    const g = general(b)
    if (!g.ok) wrong.push(`${text.slice(0, 200)} → fast accepted, general ${g.type}: ${g.message.slice(0, 200)}`)
    else if (JSON.stringify(plain(fast)) !== JSON.stringify(plain(g.value as never))) wrong.push(`${text.slice(0, 200)} → different requests`)
    // Where it says the keys lie, the bytes are each key's UTF-8 (what the router hashes).
    if (fast.keyTable) {
      tables++
      const { body, fields } = fast.keyTable
      fast.Records.forEach((r, i) => {
        const at = fields[i * BATCH_STRIDE + BATCH_KEY_START]!
        const bytes = body.subarray(at, at + fields[i * BATCH_STRIDE + BATCH_KEY_LENGTH]!)
        if (!bytes.equals(Buffer.from(r.PartitionKey, 'utf8'))) wrong.push(`${text.slice(0, 200)} → record ${i}'s key table points at ${JSON.stringify(bytes.toString('latin1'))}`)
      })
    } else if (fast.Records.every((r) => r.ExplicitHashKey === undefined && /^[\x20-\x7e]*$/.test(r.PartitionKey)) && !text.includes('\\')) {
      wrong.push(`${text.slice(0, 200)} → plain keys, but no key table`)
    }
  }
  t.same(wrong.slice(0, 5), [], 'no body is accepted differently')
  t.ok(tables > 0, `${tables} bodies came with a table of where their keys lie, each right`)
  t.ok(validHandled > valid * 0.8, `the parser reads most unmutated bodies itself (${validHandled} of ${valid}; ${handled} of ${BODIES.length} in all)`)
})

t.test('bodies of every shape the parser declines are the general path\'s to answer', async (t) => {
  const declined = [
    '{"StreamName":"s","Records":[{"Data":null,"PartitionKey":"k"}]}',
    '{"StreamName":"s","Records":[{"Data":"AAAA","PartitionKey":"k","ExplicitHashKey":null}]}',
    '{"StreamName":"s","StreamName":"s","Records":[{"Data":"AAAA","PartitionKey":"k"}]}',
    '{"StreamName":"s","Records":[{"Data":"QUJD\\/AAA","PartitionKey":"k"}]}',
    '{"StreamName":"s","Records":[{"Data":"AB==","PartitionKey":"k"}]}',
    '{"StreamName":"s","Records":[]}',
    '{"StreamName":"s","DryRun":true,"Records":[{"Data":"AAAA","PartitionKey":"k"}]}',
    '{"StreamName":"s","Records":[{"Data":"AAAA","PartitionKey":"k"}]} x',
    '{"StreamName":"s","Records":[{"Data":"AAAA","PartitionKey":"\\x"}]}',
  ]
  for (const text of declined) t.equal(parsePutRecords(Buffer.from(text)), null, text)
  const big = Buffer.from(`{"StreamName":"s","Records":[{"Data":"${Buffer.alloc(1048577).toString('base64')}","PartitionKey":"k"}]}`)
  t.equal(parsePutRecords(big), null, 'Data of 1 MiB + 1 byte is declined')
  const max = Buffer.alloc(1048576, 7)
  const atMax = parsePutRecords(Buffer.from(`{"StreamName":"s","Records":[{"Data":"${max.toString('base64')}","PartitionKey":"k"}]}`))
  t.ok(atMax?.Records[0]?.Data.equals(max), 'Data of exactly 1 MiB is read')
  const keys = parsePutRecords(Buffer.from('{ "Records" : [ { "PartitionKey" : "\\ud83d\\ude00\\u0000é\\"" , "Data" : "" } ] , "StreamARN" : "' + ARN + '" }'))
  t.same(keys && plain(keys), { StreamName: undefined, StreamARN: ARN, Records: [{ Data: '', PartitionKey: '😀\u0000é"', ExplicitHashKey: undefined }] }, 'escapes, a surrogate pair, whitespace, any member order')
})

/** POSTs a raw PutRecords (or any action) body over HTTP/1.1. */
async function call(endpoint: string, action: string, text: string): Promise<{ status: number; json: Record<string, unknown> | undefined }> {
  const res = await fetch(endpoint + '/', { method: 'POST', headers: { 'content-type': AMZ_JSON, 'x-amz-target': `Kinesis_20131202.${action}` }, body: text })
  const raw = await res.text()
  let parsed: Record<string, unknown> | undefined
  try { parsed = JSON.parse(raw) as Record<string, unknown> } catch { parsed = undefined }
  return { status: res.status, json: parsed }
}

async function storedRecords(endpoint: string): Promise<string[]> {
  const shards = (await call(endpoint, 'ListShards', '{"StreamName":"s"}')).json!.Shards as { ShardId: string }[]
  const out: string[] = []
  for (const { ShardId } of shards) {
    let it = (await call(endpoint, 'GetShardIterator', JSON.stringify({ StreamName: 's', ShardId, ShardIteratorType: 'TRIM_HORIZON' }))).json!.ShardIterator as string | undefined
    for (;;) {
      const page = (await call(endpoint, 'GetRecords', JSON.stringify({ ShardIterator: it, Limit: 10000 }))).json!
      const recs = page.Records as { Data: string; PartitionKey: string }[]
      for (const r of recs) out.push(`${ShardId} ${r.PartitionKey} ${r.Data}`)
      if (!recs.length || page.MillisBehindLatest === 0) break
      it = page.NextShardIterator as string
    }
  }
  return out
}

t.test('over HTTP, a relay with the fast path answers and stores exactly as one without it', async (t) => {
  const on = await testRelay(t)
  const off = await testRelay(t)
  for (const r of [on, off]) t.equal((await call(r.endpoint, 'CreateStream', '{"StreamName":"s","ShardCount":3}')).status, 200, 'stream created')
  const wasEnabled = fastPut.enabled
  t.teardown(() => { fastPut.enabled = wasEnabled })
  const differ: string[] = []
  let ok = 0
  const sample = BODIES.slice(0, 1500)
  for (const { text } of sample) {
    fastPut.enabled = true
    const a = await call(on.endpoint, 'PutRecords', text)
    fastPut.enabled = false
    const b = await call(off.endpoint, 'PutRecords', text)
    const shape = (r: typeof a) => JSON.stringify(r.status === 200
      ? { status: 200, failed: r.json?.FailedRecordCount, records: (r.json?.Records as Record<string, unknown>[]).map((x) => x.ShardId ?? x.ErrorCode), enc: r.json?.EncryptionType }
      : { status: r.status, json: r.json })
    if (a.status === 200) ok++
    if (shape(a) !== shape(b)) differ.push(`${text.slice(0, 200)}: ${shape(a).slice(0, 300)} vs ${shape(b).slice(0, 300)}`)
  }
  fastPut.enabled = wasEnabled
  t.same(differ.slice(0, 5), [], `the same status, __type, message and per-record shards for ${sample.length} bodies (${ok} stored)`)
  const [a, b] = [await storedRecords(on.endpoint), await storedRecords(off.endpoint)]
  t.ok(a.length > 0, `records were stored (${a.length})`)
  t.same(a, b, 'the same records are read back, shard by shard, in order')
})
