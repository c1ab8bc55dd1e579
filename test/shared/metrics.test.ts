import t from 'tap'
import { CONTENT_TYPE, Registry, formatValue } from '../../shared/metrics.js'

/** The two assertions `throwsNaming` needs, from a tap test. */
interface Test {
  ok(value: unknown, message: string): unknown
  fail(message: string): unknown
}

/** Asserts that `fn` throws an instance of `Type` whose message contains `naming`. */
function throwsNaming(tt: Test, fn: () => unknown, Type: ErrorConstructor, naming: string, what?: string): void {
  let caught: unknown
  try {
    fn()
  } catch (err) {
    caught = err
  }
  const label = what ?? `throws a ${Type.name} naming ${JSON.stringify(naming)}`
  if (!(caught instanceof Type)) {
    tt.fail(`${label}: got ${caught === undefined ? 'no error' : String(caught)}`)
    return
  }
  tt.ok(caught.message.includes(naming), `${label}: ${caught.message}`)
}

/** Labels of any shape, for checks that deliberately break the declared label types. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const anyLabels = (labels: Record<string, string>): any => labels

/* ----------------------------------------------------------------------------
 * A tiny checker for the text exposition format 0.0.4. It returns the problems it
 * finds; an empty list means the text is valid. It is strict about things the
 * registry never emits (timestamps, free comments, blank lines, trailing commas).
 */

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/
const VALUE = /^(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[+-]Inf|NaN)$/
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped'])

interface Sample {
  name: string
  labels: Array<[string, string]>
  value: number
}

function parseValue(text: string): number {
  if (text === '+Inf') return Infinity
  if (text === '-Inf') return -Infinity
  return Number(text)
}

/** Parses one sample line, or returns a problem. */
function parseSample(line: string): Sample | string {
  const nameMatch = METRIC_NAME.exec(line)
  if (!nameMatch) return 'sample does not start with a metric name'
  const name = nameMatch[0]
  let i = name.length
  const labels: Array<[string, string]> = []
  if (line[i] === '{') {
    i++
    for (;;) {
      const labelMatch = LABEL_NAME.exec(line.slice(i))
      if (!labelMatch) return `bad label name at column ${i}`
      const label = labelMatch[0]
      i += label.length
      if (line[i] !== '=' || line[i + 1] !== '"') return `label ${label} is not followed by ="`
      i += 2
      let value = ''
      for (;;) {
        const c = line[i]
        if (c === undefined) return `unterminated value for label ${label}`
        if (c === '"') break
        if (c === '\\') {
          const e = line[i + 1]
          if (e === '\\') value += '\\'
          else if (e === '"') value += '"'
          else if (e === 'n') value += '\n'
          else return `bad escape \\${e ?? ''} in label ${label}`
          i += 2
        } else {
          value += c
          i++
        }
      }
      i++ // closing quote
      if (labels.some(([n]) => n === label)) return `label ${label} repeated`
      labels.push([label, value])
      if (line[i] === ',') {
        i++
        continue
      }
      if (line[i] === '}') {
        i++
        break
      }
      return `expected , or } after label ${label}`
    }
  }
  if (line[i] !== ' ') return 'metric is not followed by a single space'
  const valueText = line.slice(i + 1)
  if (!VALUE.test(valueText)) return `bad sample value ${JSON.stringify(valueText)}`
  return { name, labels, value: parseValue(valueText) }
}

function checkExposition(text: string): string[] {
  const problems: string[] = []
  if (text === '') return problems
  if (!text.endsWith('\n')) problems.push('text does not end with a newline')
  const lines = text.split('\n')
  lines.pop()

  const helped = new Set<string>()
  const typed = new Map<string, string>()
  const finished = new Set<string>() // families whose block has ended
  const series = new Set<string>()
  let family: string | undefined
  // histogram state, per series (labels without le)
  const buckets = new Map<string, Array<{ le: number; value: number }>>()
  const counts = new Map<string, number>()

  const enter = (name: string, n: number): void => {
    if (family === name) return
    if (finished.has(name)) problems.push(`line ${n}: family ${name} appears in two separate blocks`)
    if (family !== undefined) finished.add(family)
    family = name
  }

  lines.forEach((line, index) => {
    const n = index + 1
    if (line === '') return void problems.push(`line ${n}: blank line`)
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) ([^ ]+) ?(.*)$/.exec(line)
      if (!m) return void problems.push(`line ${n}: comment is neither HELP nor TYPE`)
      const [, kind, name = '', rest = ''] = m
      if (!new RegExp(`${METRIC_NAME.source}$`).test(name)) return void problems.push(`line ${n}: bad metric name ${name}`)
      enter(name, n)
      if (kind === 'HELP') {
        if (helped.has(name)) problems.push(`line ${n}: second HELP for ${name}`)
        helped.add(name)
        if (/\\([^\\n]|$)/.test(rest.replace(/\\\\/g, ''))) problems.push(`line ${n}: bad escape in HELP`)
      } else {
        if (typed.has(name)) problems.push(`line ${n}: second TYPE for ${name}`)
        if (!TYPES.has(rest)) problems.push(`line ${n}: unknown type ${rest}`)
        if (series.has(`family:${name}`)) problems.push(`line ${n}: TYPE for ${name} after its samples`)
        typed.set(name, rest)
      }
      return
    }
    const sample = parseSample(line)
    if (typeof sample === 'string') return void problems.push(`line ${n}: ${sample}`)
    const type = family === undefined ? undefined : typed.get(family)
    let base = sample.name
    if (type === 'histogram') {
      const m = /^(.*)_(bucket|sum|count)$/.exec(sample.name)
      if (!m || m[1] !== family) return void problems.push(`line ${n}: ${sample.name} is not a sample of histogram ${family}`)
      base = m[1] ?? ''
    } else if (sample.name !== family) {
      // An untyped sample starts its own family.
      enter(sample.name, n)
      base = sample.name
    }
    series.add(`family:${base}`)
    const id = `${sample.name}{${[...sample.labels].sort().map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(',')}}`
    if (series.has(id)) problems.push(`line ${n}: duplicate series ${id}`)
    series.add(id)
    if (type === 'counter' && !(sample.value >= 0)) problems.push(`line ${n}: counter ${sample.name} is ${sample.value}`)
    if (type === 'histogram') {
      const own = sample.labels.filter(([k]) => k !== 'le')
      const key = `${base}{${own.map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(',')}}`
      if (sample.name.endsWith('_bucket')) {
        const le = sample.labels.find(([k]) => k === 'le')
        if (!le) return void problems.push(`line ${n}: bucket without le`)
        if (!VALUE.test(le[1])) return void problems.push(`line ${n}: bad le ${le[1]}`)
        const list = buckets.get(key) ?? []
        const prev = list[list.length - 1]
        const bound = parseValue(le[1])
        if (prev && !(bound > prev.le)) problems.push(`line ${n}: le ${le[1]} does not increase`)
        if (prev && sample.value < prev.value) problems.push(`line ${n}: bucket counts are not cumulative`)
        list.push({ le: bound, value: sample.value })
        buckets.set(key, list)
      } else if (sample.name.endsWith('_count')) {
        counts.set(key, sample.value)
        const list = buckets.get(key) ?? []
        const last = list[list.length - 1]
        if (!last || last.le !== Infinity) problems.push(`line ${n}: ${key} has no +Inf bucket before its count`)
        else if (last.value !== sample.value) problems.push(`line ${n}: ${key} +Inf bucket ${last.value} != count ${sample.value}`)
      }
    }
  })
  for (const key of buckets.keys()) {
    if (!counts.has(key)) problems.push(`histogram series ${key} has no _count`)
  }
  return problems
}

/* ------------------------------------------------------------------ tests */

t.test('the exposition checker rejects malformed text', async (t) => {
  const bad: Record<string, string> = {
    'no final newline': 'a 1',
    'blank line': 'a 1\n\nb 2\n',
    'free comment': '# hello\n',
    'two HELP lines': '# HELP a x\n# HELP a y\n# TYPE a gauge\na 1\n',
    'two TYPE lines': '# TYPE a gauge\n# TYPE a counter\na 1\n',
    'TYPE after samples': 'a 1\n# TYPE a gauge\n',
    'bad HELP escape': '# HELP a bad \\t escape\n# TYPE a gauge\na 1\n',
    'bad metric name': '1a 1\n',
    'bad label name': 'a{1b="x"} 1\n',
    'unquoted label value': 'a{b=x} 1\n',
    'bad label escape': 'a{b="\\t"} 1\n',
    'unterminated label value': 'a{b="x} 1\n',
    'trailing comma': 'a{b="x",} 1\n',
    'repeated label': 'a{b="x",b="y"} 1\n',
    'bad value': 'a 1e\n',
    'Inf without sign': 'a Inf\n',
    timestamp: 'a 1 1700000000000\n',
    'two spaces': 'a  1\n',
    'duplicate series': '# TYPE a gauge\na{b="x"} 1\na{b="x"} 2\n',
    'split family': '# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\n# HELP a again\n',
    'negative counter': '# TYPE a counter\na -1\n',
    'foreign sample in a histogram': '# TYPE h histogram\nh_bucket{le="+Inf"} 1\nh_total 1\nh_count 1\n',
    'bucket without le': '# TYPE h histogram\nh_bucket 1\nh_sum 1\nh_count 1\n',
    'buckets not cumulative': '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n',
    'le not increasing': '# TYPE h histogram\nh_bucket{le="2"} 1\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n',
    'no +Inf bucket': '# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n',
    '+Inf bucket differs from count': '# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 1\n',
    'no count': '# TYPE h histogram\nh_bucket{le="+Inf"} 1\nh_sum 1\n',
  }
  for (const [what, text] of Object.entries(bad)) {
    t.not(checkExposition(text).length, 0, what)
  }
  t.same(
    checkExposition('# HELP a Has \\\\ and \\n.\n# TYPE a gauge\na{b="q\\"\\\\\\n"} -Inf\nuntyped_thing 1.5e-7\n'),
    [],
    'and accepts well-formed text',
  )
})

t.test('CONTENT_TYPE names the 0.0.4 text format', async (t) => {
  t.equal(CONTENT_TYPE, 'text/plain; version=0.0.4; charset=utf-8')
})

t.test('an empty registry renders the empty string', async (t) => {
  t.equal(new Registry().render(), '')
})

t.test('an unlabelled counter renders HELP, TYPE and a zero sample before it is first increased', async (t) => {
  const r = new Registry()
  const c = r.counter('relay_requests_total', 'Requests handled.')
  const head = '# HELP relay_requests_total Requests handled.\n# TYPE relay_requests_total counter\n'
  t.equal(r.render(), `${head}relay_requests_total 0\n`)
  c.inc()
  c.inc(2.5)
  c.inc(undefined, 2)
  t.equal(r.render(), `${head}relay_requests_total 5.5\n`)
  t.equal(c.get(), 5.5)
})

t.test('a labelled counter renders one line per label set in declared label order, in the order first used', async (t) => {
  const r = new Registry()
  const c = r.counter('records_total', 'Records.', ['stream', 'shard'])
  const head = '# HELP records_total Records.\n# TYPE records_total counter\n'
  t.equal(r.render(), head, 'no samples until a label set is used')
  c.inc({ stream: 'b', shard: '0' })
  c.inc({ shard: '1', stream: 'a' }, 5)
  c.inc({ stream: 'b', shard: '0' })
  t.equal(r.render(), `${head}records_total{stream="b",shard="0"} 2\nrecords_total{stream="a",shard="1"} 5\n`)
})

t.test('a bound child and inc with labels count into the same series', async (t) => {
  const r = new Registry()
  const c = r.counter('bytes_total', 'Bytes.', ['stream'])
  const child = c.labels({ stream: 'x' })
  child.inc()
  child.inc(4)
  c.inc({ stream: 'x' })
  t.equal(child.get(), 6)
  t.equal(c.get({ stream: 'x' }), 6)
  t.equal(c.labels({ stream: 'x' }), child, 'the same child object comes back')
  t.equal(r.render(), '# HELP bytes_total Bytes.\n# TYPE bytes_total counter\nbytes_total{stream="x"} 6\n')
})

t.test('label sets that would collide if their values were simply joined stay distinct', async (t) => {
  const r = new Registry()
  const c = r.counter('pairs_total', 'Pairs.', ['a', 'b'])
  c.inc({ a: 'x,y', b: 'z' })
  c.inc({ a: 'x', b: 'y,z' }, 2)
  c.inc({ a: 'x\u0000y', b: 'z' }, 3)
  c.inc({ a: 'x', b: 'y\u0000z' }, 4)
  c.inc({ a: '1:x', b: '' }, 5)
  c.inc({ a: '', b: '1:x' }, 6)
  const lines = r.render().split('\n').filter((l) => l.startsWith('pairs_total{'))
  t.same(
    lines.map((l) => l.slice(l.lastIndexOf(' ') + 1)),
    ['1', '2', '3', '4', '5', '6'],
  )
})

t.test('a counter refuses to go down', async (t) => {
  const r = new Registry()
  const c = r.counter('up_total', 'Up.', ['k'])
  c.inc({ k: 'a' }, 2)
  throwsNaming(t, () => c.inc({ k: 'a' }, -1), RangeError, 'up_total')
  throwsNaming(t, () => c.inc({ k: 'a' }, NaN), RangeError, 'up_total')
  throwsNaming(t, () => c.labels({ k: 'a' }).inc(-0.5), RangeError, 'up_total')
  t.equal(c.get({ k: 'a' }), 2)
})

t.test('a gauge can be set, increased and decreased, with or without labels', async (t) => {
  const r = new Registry()
  const g = r.gauge('queue_depth', 'Queued batches.')
  const lg = r.gauge('lag_seconds', 'Lag.', ['stream'])
  g.set(10)
  g.inc()
  g.inc(4)
  g.dec()
  g.dec(undefined, 2.5)
  lg.set(3, { stream: 'a' })
  lg.inc({ stream: 'a' }, 2)
  lg.dec({ stream: 'b' })
  const child = lg.labels({ stream: 'c' })
  child.set(-1)
  child.inc(0.5)
  t.equal(
    r.render(),
    '# HELP queue_depth Queued batches.\n# TYPE queue_depth gauge\nqueue_depth 11.5\n' +
      '# HELP lag_seconds Lag.\n# TYPE lag_seconds gauge\n' +
      'lag_seconds{stream="a"} 5\nlag_seconds{stream="b"} -1\nlag_seconds{stream="c"} -0.5\n',
  )
})

t.test("a gauge's collect callback is evaluated each time the registry renders", async (t) => {
  const r = new Registry()
  let devices = 2
  let calls = 0
  r.gauge('connected_devices', 'Devices connected now.', [], () => {
    calls++
    return devices
  })
  t.equal(calls, 0, 'not called at registration')
  const head = '# HELP connected_devices Devices connected now.\n# TYPE connected_devices gauge\n'
  t.equal(r.render(), `${head}connected_devices 2\n`)
  devices = 5
  t.equal(r.render(), `${head}connected_devices 5\n`)
  t.equal(calls, 2)
})

t.test('a collect callback may return labelled samples, rendered as returned and nothing else', async (t) => {
  const r = new Registry()
  let fleet: Array<{ labels: { site: string }; value: number }> = [
    { labels: { site: 'north' }, value: 3 },
    { labels: { site: 'so"uth' }, value: 0 },
  ]
  r.gauge('devices', 'Devices by site.', ['site'], () => fleet)
  const head = '# HELP devices Devices by site.\n# TYPE devices gauge\n'
  t.equal(r.render(), `${head}devices{site="north"} 3\ndevices{site="so\\"uth"} 0\n`)
  fleet = [{ labels: { site: 'east' }, value: 1 }]
  t.equal(r.render(), `${head}devices{site="east"} 1\n`, 'label sets no longer returned disappear')
  fleet = []
  t.equal(r.render(), head)
})

t.test('a collect callback may return label sets that differ only in where one value ends', async (t) => {
  const r = new Registry()
  r.gauge('split', 'S.', ['a', 'b'], () => [
    { labels: { a: 'ab', b: '' }, value: 1 },
    { labels: { a: 'a', b: 'b' }, value: 2 },
    { labels: { a: '1:a', b: '' }, value: 3 },
    { labels: { a: '', b: '1:a' }, value: 4 },
  ])
  t.equal(
    r.render(),
    '# HELP split S.\n# TYPE split gauge\n' +
      'split{a="ab",b=""} 1\nsplit{a="a",b="b"} 2\nsplit{a="1:a",b=""} 3\nsplit{a="",b="1:a"} 4\n',
  )
})

t.test("a collect callback's samples are validated like any others", async (t) => {
  const cases: Array<[string, () => unknown, string[], string]> = [
    ['an undeclared label', () => [{ labels: { site: 'a', rack: '1' }, value: 1 }], ['site'], 'rack'],
    ['a missing label', () => [{ labels: {}, value: 1 }], ['site'], 'site'],
    ['a number for a labelled gauge', () => 4, ['site'], 'g'],
    ['a label set twice', () => [{ labels: { site: 'a' }, value: 1 }, { labels: { site: 'a' }, value: 2 }], ['site'], 'twice'],
    ['a sample without a value', () => [{ labels: { site: 'a' } }], ['site'], 'value'],
    ['neither a number nor an array', () => 'lots', ['site'], 'g'],
  ]
  for (const [what, collect, labels, naming] of cases) {
    const r = new Registry()
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    r.gauge('g', 'G.', labels, collect as any)
    throwsNaming(t, () => r.render(), TypeError, naming, what)
  }
})

t.test('a gauge fed by a collect callback cannot also be set by hand', async (t) => {
  const r = new Registry()
  const g = r.gauge('collected', 'C.', [], () => 1)
  throwsNaming(t, () => g.set(2), TypeError, 'collected')
  throwsNaming(t, () => g.inc(), TypeError, 'collected')
  throwsNaming(t, () => g.dec(), TypeError, 'collected')
  throwsNaming(t, () => g.labels(), TypeError, 'collected')
  t.equal(r.render(), '# HELP collected C.\n# TYPE collected gauge\ncollected 1\n')
})

t.test("a histogram's buckets are cumulative and end with +Inf", async (t) => {
  const r = new Registry()
  const h = r.histogram('latency_seconds', 'Latency.', [0.5, 1, 5])
  const head = '# HELP latency_seconds Latency.\n# TYPE latency_seconds histogram\n'
  t.equal(
    r.render(),
    head +
      'latency_seconds_bucket{le="0.5"} 0\nlatency_seconds_bucket{le="1"} 0\nlatency_seconds_bucket{le="5"} 0\n' +
      'latency_seconds_bucket{le="+Inf"} 0\nlatency_seconds_sum 0\nlatency_seconds_count 0\n',
  )
  for (const v of [0.25, 0.5, 0.75, 3, 10]) h.observe(v) // 0.5 sits on a bound: le is inclusive
  t.equal(
    r.render(),
    head +
      'latency_seconds_bucket{le="0.5"} 2\nlatency_seconds_bucket{le="1"} 3\nlatency_seconds_bucket{le="5"} 4\n' +
      'latency_seconds_bucket{le="+Inf"} 5\nlatency_seconds_sum 14.5\nlatency_seconds_count 5\n',
  )
})

t.test('a labelled histogram puts le after its own labels', async (t) => {
  const r = new Registry()
  const h = r.histogram('put_bytes', 'Put sizes.', [1024], ['stream', 'op'])
  h.observe(100, { stream: 's"1', op: 'put' })
  h.labels({ op: 'put', stream: 's"1' }).observe(2000)
  t.equal(
    r.render(),
    '# HELP put_bytes Put sizes.\n# TYPE put_bytes histogram\n' +
      'put_bytes_bucket{stream="s\\"1",op="put",le="1024"} 1\n' +
      'put_bytes_bucket{stream="s\\"1",op="put",le="+Inf"} 2\n' +
      'put_bytes_sum{stream="s\\"1",op="put"} 2100\n' +
      'put_bytes_count{stream="s\\"1",op="put"} 2\n',
  )
})

t.test('a histogram given +Inf as its last bucket renders +Inf once', async (t) => {
  const r = new Registry()
  const h = r.histogram('h', 'H.', [1, Infinity])
  t.same(h.buckets, [1])
  h.observe(2)
  t.equal(r.render(), '# HELP h H.\n# TYPE h histogram\nh_bucket{le="1"} 0\nh_bucket{le="+Inf"} 1\nh_sum 2\nh_count 1\n')
})

t.test('a histogram with no buckets has only the +Inf bucket', async (t) => {
  const r = new Registry()
  r.histogram('h', 'H.', []).observe(-3)
  t.equal(r.render(), '# HELP h H.\n# TYPE h histogram\nh_bucket{le="+Inf"} 1\nh_sum -3\nh_count 1\n')
})

t.test('an observed NaN counts only in the +Inf bucket and makes the sum NaN', async (t) => {
  const r = new Registry()
  const h = r.histogram('h', 'H.', [1, 2])
  h.observe(NaN)
  t.equal(r.render(), '# HELP h H.\n# TYPE h histogram\nh_bucket{le="1"} 0\nh_bucket{le="2"} 0\nh_bucket{le="+Inf"} 1\nh_sum NaN\nh_count 1\n')
})

t.test('histogram buckets must be finite and strictly increasing', async (t) => {
  const bad: Array<[string, number[]]> = [
    ['repeated', [1, 1]],
    ['decreasing', [2, 1]],
    ['NaN', [1, NaN]],
    ['+Inf before the end', [1, Infinity, 2]],
    ['-Inf', [-Infinity, 1]],
  ]
  for (const [what, buckets] of bad) {
    throwsNaming(t, () => new Registry().histogram('sizes', 'S.', buckets), RangeError, 'sizes', what)
  }
})

t.test('label values escape backslash, double quote and newline, and nothing else', async (t) => {
  const r = new Registry()
  r.counter('esc_total', 'E.', ['path']).inc({ path: 'a\\b"c\nd\te✓' })
  t.equal(r.render(), '# HELP esc_total E.\n# TYPE esc_total counter\n' + String.raw`esc_total{path="a\\b\"c\nd` + '\te✓"} 1\n')
})

t.test('HELP text escapes backslash and newline but leaves double quotes alone', async (t) => {
  const r = new Registry()
  r.gauge('g', 'Say "hi"\\ then\nmore')
  t.equal(r.render(), String.raw`# HELP g Say "hi"\\ then\nmore` + '\n# TYPE g gauge\ng 0\n')
})

t.test('an invalid metric name throws a TypeError naming it', async (t) => {
  for (const bad of ['', '1abc', 'has space', 'dash-name', 'ünï', 'a{b}', 'x\n']) {
    throwsNaming(t, () => new Registry().counter(bad, 'H.'), TypeError, JSON.stringify(bad), `counter ${JSON.stringify(bad)}`)
    throwsNaming(t, () => new Registry().gauge(bad, 'H.'), TypeError, JSON.stringify(bad), `gauge ${JSON.stringify(bad)}`)
    throwsNaming(t, () => new Registry().histogram(bad, 'H.', [1]), TypeError, JSON.stringify(bad), `histogram ${JSON.stringify(bad)}`)
  }
  const r = new Registry()
  for (const good of ['a', '_x', ':y', 'relay:put_records:rate5m', 'A9_']) r.counter(good, 'H.')
  t.equal(r.render().split('\n').filter((l) => l.startsWith('# TYPE')).length, 5, 'valid names are accepted')
})

t.test('an invalid, reserved or repeated label name throws a TypeError naming it', async (t) => {
  const cases: Array<[string, string[], string]> = [
    ['starts with a digit', ['1x'], '"1x"'],
    ['has a dash', ['a-b'], '"a-b"'],
    ['has a colon', ['a:b'], '"a:b"'],
    ['is empty', [''], '""'],
    ['starts with __', ['__name__'], '__name__'],
    ['is repeated', ['a', 'b', 'a'], '"a"'],
  ]
  for (const [what, labels, naming] of cases) {
    throwsNaming(t, () => new Registry().counter('c', 'C.', labels), TypeError, naming, `counter label that ${what}`)
    throwsNaming(t, () => new Registry().gauge('g', 'G.', labels), TypeError, naming, `gauge label that ${what}`)
    throwsNaming(t, () => new Registry().histogram('h', 'H.', [1], labels), TypeError, naming, `histogram label that ${what}`)
  }
  throwsNaming(t, () => new Registry().histogram('h', 'H.', [1], ['le']), TypeError, '"le"', 'le on a histogram')
  t.doesNotThrow(() => new Registry().counter('c', 'C.', ['le']), 'le is fine on a counter')
})

t.test('using a label name that was not declared throws a TypeError naming it, and records nothing', async (t) => {
  const r = new Registry()
  const c = r.counter('c_total', 'C.', ['stream'])
  const u = r.counter('u_total', 'U.')
  const g = r.gauge('g', 'G.', ['stream'])
  const h = r.histogram('h', 'H.', [1], ['stream'])
  const before = r.render()
  throwsNaming(t, () => c.inc(anyLabels({ stream: 'x', shard: '1' })), TypeError, 'shard', 'extra label on a counter')
  throwsNaming(t, () => c.inc(anyLabels({ shard: '1' })), TypeError, 'shard', 'wrong label on a counter')
  throwsNaming(t, () => c.labels(anyLabels({ strem: 'x' })), TypeError, 'strem', 'misspelt label on labels()')
  throwsNaming(t, () => u.inc(anyLabels({ stream: 'x' })), TypeError, 'stream', 'any label on an unlabelled counter')
  throwsNaming(t, () => g.set(1, anyLabels({ device: 'd' })), TypeError, 'device', 'gauge set')
  throwsNaming(t, () => g.inc(anyLabels({ device: 'd' })), TypeError, 'device', 'gauge inc')
  throwsNaming(t, () => h.observe(1, anyLabels({ device: 'd' })), TypeError, 'device', 'histogram observe')
  throwsNaming(t, () => h.observe(1, anyLabels({ stream: 's', le: '1' })), TypeError, 'le', 'le passed to a histogram')
  throwsNaming(t, () => c.remove(anyLabels({ shard: '1' })), TypeError, 'shard', 'remove')
  t.equal(r.render(), before)
  c.inc({ stream: 'x' })
  throwsNaming(t, () => c.inc(anyLabels({ stream: 'x', shard: '1' })), TypeError, 'shard', 'extra label beside a known series')
  throwsNaming(t, () => c.labels(anyLabels({ stream: 'x', shard: '1' })), TypeError, 'shard', 'extra label on labels() beside a known series')
  t.equal(c.get({ stream: 'x' }), 1)
})

t.test('leaving out a declared label, or giving a non-string value, throws a TypeError naming it', async (t) => {
  const r = new Registry()
  const c = r.counter('c_total', 'C.', ['stream', 'shard'])
  throwsNaming(t, () => c.inc(anyLabels({ stream: 'x' })), TypeError, 'shard', 'one missing')
  throwsNaming(t, () => new Registry().counter('o_total', 'O.', ['constructor']).inc(anyLabels({})), TypeError, 'missing', 'a missing label named like an Object property')
  throwsNaming(t, () => c.inc(), TypeError, 'stream', 'no labels at all')
  throwsNaming(t, () => c.inc(2), TypeError, 'stream', 'a bare increment')
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  throwsNaming(t, () => c.inc({ stream: 'x', shard: 3 as any }), TypeError, 'shard', 'a number value')
  t.equal(r.render(), '# HELP c_total C.\n# TYPE c_total counter\n')
  c.inc({ stream: 'x', shard: '3' })
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  throwsNaming(t, () => c.inc({ stream: 'x', shard: 3 as any }), TypeError, 'shard', 'a number value that stringifies to a known one')
  t.equal(c.get({ stream: 'x', shard: '3' }), 1)
})

t.test("registering a name twice, or a name a histogram's samples use, throws a TypeError naming it", async (t) => {
  const r = new Registry()
  r.counter('a', 'A.')
  r.histogram('h', 'H.', [1])
  r.counter('x_sum', 'X.')
  throwsNaming(t, () => r.counter('a', 'A.'), TypeError, '"a"', 'counter twice')
  throwsNaming(t, () => r.gauge('a', 'A.'), TypeError, '"a"', 'gauge over a counter')
  throwsNaming(t, () => r.histogram('a', 'A.', [1]), TypeError, '"a"', 'histogram over a counter')
  throwsNaming(t, () => r.counter('h_count', 'C.'), TypeError, 'h_count', 'counter over a histogram count')
  throwsNaming(t, () => r.gauge('h_bucket', 'B.'), TypeError, 'h_bucket', 'gauge over a histogram bucket')
  throwsNaming(t, () => r.histogram('x', 'X.', [1]), TypeError, 'x_sum', 'histogram whose sum is taken')
  t.equal(r.render().split('\n').filter((l) => l.startsWith('# TYPE')).length, 3, 'nothing more was registered')
})

t.test('numbers render without an exponent for integers, and as +Inf, -Inf and NaN', async (t) => {
  const cases: Array<[number, string]> = [
    [0, '0'],
    [-0, '0'],
    [42, '42'],
    [-7, '-7'],
    [0.5, '0.5'],
    [1e20, '100000000000000000000'],
    [1e21, '1000000000000000000000'],
    [2 ** 70, '1180591620717411303424'],
    [-1e22, '-10000000000000000000000'],
    [Number.MAX_SAFE_INTEGER, '9007199254740991'],
    [Infinity, '+Inf'],
    [-Infinity, '-Inf'],
    [NaN, 'NaN'],
  ]
  for (const [value, text] of cases) t.equal(formatValue(value), text, String(value))
  t.equal(Number(formatValue(2 ** 70)), 2 ** 70, 'a large integer reads back exactly')
  const r = new Registry()
  const g = r.gauge('g', 'G.', ['v'])
  g.set(1e21, { v: 'big' })
  g.set(-Infinity, { v: 'neg' })
  g.set(NaN, { v: 'nan' })
  t.equal(r.render(), '# HELP g G.\n# TYPE g gauge\ng{v="big"} 1000000000000000000000\ng{v="neg"} -Inf\ng{v="nan"} NaN\n')
})

t.test('remove forgets one labelled series and leaves the rest', async (t) => {
  const r = new Registry()
  const c = r.counter('c_total', 'C.', ['stream'])
  c.inc({ stream: 'a' })
  c.inc({ stream: 'b' }, 2)
  t.equal(c.get({ stream: 'never' }), 0, 'get on an unused label set reads zero')
  t.equal(c.remove({ stream: 'never' }), false, '...and did not create it')
  t.equal(c.remove({ stream: 'a' }), true)
  t.equal(c.remove({ stream: 'a' }), false, 'a second remove finds nothing')
  t.equal(r.render(), '# HELP c_total C.\n# TYPE c_total counter\nc_total{stream="b"} 2\n')
  c.inc({ stream: 'a' })
  t.equal(c.get({ stream: 'a' }), 1, 'a removed series starts again from zero')
  throwsNaming(t, () => r.counter('u', 'U.').remove(anyLabels({})), TypeError, 'u', 'an unlabelled metric has nothing to remove')
})

t.test('remove works on metrics with several labels', async (t) => {
  const r = new Registry()
  const g = r.gauge('g', 'G.', ['a', 'b', 'c'])
  g.set(1, { a: '1', b: '1', c: '1' })
  g.set(2, { a: '1', b: '1', c: '2' })
  g.set(3, { a: '1', b: '2', c: '1' })
  t.equal(g.remove({ a: '2', b: '1', c: '1' }), false, 'an unknown first value')
  t.equal(g.remove({ a: '1', b: '3', c: '1' }), false, 'an unknown middle value')
  t.equal(g.remove({ a: '1', b: '2', c: '1' }), true)
  t.equal(g.remove({ a: '1', b: '1', c: '1' }), true)
  t.equal(r.render(), '# HELP g G.\n# TYPE g gauge\ng{a="1",b="1",c="2"} 2\n')
  g.set(4, { a: '1', b: '2', c: '1' })
  t.equal(g.get({ a: '1', b: '2', c: '1' }), 4)
  t.equal(g.get({ a: '1', b: '1', c: '2' }), 2)
  t.equal(r.render(), '# HELP g G.\n# TYPE g gauge\ng{a="1",b="1",c="2"} 2\ng{a="1",b="2",c="1"} 4\n')
})

t.test('families render in registration order, each with one HELP and one TYPE', async (t) => {
  const r = new Registry()
  r.gauge('zeta', 'Z.')
  r.counter('alpha', 'A.')
  r.histogram('mid', 'M.', [])
  t.equal(
    r.render(),
    '# HELP zeta Z.\n# TYPE zeta gauge\nzeta 0\n# HELP alpha A.\n# TYPE alpha counter\nalpha 0\n' +
      '# HELP mid M.\n# TYPE mid histogram\nmid_bucket{le="+Inf"} 0\nmid_sum 0\nmid_count 0\n',
  )
})

t.test('a busy registry renders text that parses line by line as valid exposition', async (t) => {
  const r = new Registry()
  const nasty = ['plain', 'with "quotes"', 'back\\slash', 'new\nline', 'all \\"\n\\n', '', 'ünïcødé ✓', '{x="y"}', 'a,b=c']
  const c = r.counter('relay_records_total', 'Records\\accepted\nper "stream".', ['stream', 'shard'])
  const g = r.gauge('relay_lag_seconds', 'Lag.', ['stream'])
  const h = r.histogram('relay_put_seconds', 'Put latency.', [0.001, 0.01, 0.1, 1, 10], ['stream'])
  r.histogram('relay_idle_seconds', 'Never observed.', [1, 2])
  r.gauge('relay_devices', 'Devices.', ['site'], () => nasty.map((site, i) => ({ labels: { site }, value: i })))
  r.gauge('relay_up', 'Up.', undefined, () => 1)
  r.counter('relay_empty_total', 'Labelled, never used.', ['x'])
  let seed = 7
  const random = (): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31
    return seed / 2 ** 31
  }
  for (let i = 0; i < 2000; i++) {
    const stream = nasty[i % nasty.length] as string
    c.inc({ stream, shard: String(i % 3) }, Math.floor(random() * 10))
    g.set(random() * 100 - 50, { stream })
    h.observe(random() ** 4 * 20, { stream })
  }
  g.set(Infinity, { stream: 'plain' })
  g.set(NaN, { stream: '' })
  const text = r.render()
  t.same(checkExposition(text), [])
  const types = text.split('\n').filter((l) => l.startsWith('# TYPE'))
  t.equal(types.length, 7, 'one TYPE line per family')
  t.equal(text.split('\n').filter((l) => l.startsWith('relay_put_seconds_count')).length, nasty.length)
  const counts = text
    .split('\n')
    .filter((l) => l.startsWith('relay_put_seconds_count'))
    .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0)
  t.equal(counts, 2000, 'every observation is counted once')
})
