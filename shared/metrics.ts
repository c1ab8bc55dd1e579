/**
 * A small Prometheus metrics registry that renders the text exposition format 0.0.4. No
 * dependencies.
 *
 * Series are found through Maps keyed by label values (one level per label name), so
 * `inc`/`set`/`observe` with a labels object costs a few Map lookups and builds no key string.
 * On hot paths, take a bound child once with `metric.labels({...})` and call `child.inc(by)` /
 * `child.observe(v)`: no lookup, no allocation.
 *
 * Families render in registration order, series in first-use order. Unlabelled counters, gauges
 * and histograms render a zero sample before their first update; labelled ones render only the
 * label sets that have been used.
 */

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

export type LabelValues<L extends string = string> = Readonly<Record<L, string>>

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/

/**
 * A sample value as Prometheus spells it: `+Inf`, `-Inf`, `NaN`; integers in plain digits (never
 * with an exponent, however large); other numbers as JavaScript prints them, which Prometheus's
 * float parser reads back exactly.
 */
export function formatValue(value: number): string {
  if (value === Infinity) return '+Inf'
  if (value === -Infinity) return '-Inf'
  if (value !== value) return 'NaN'
  // Below 1e21 JavaScript prints integers without an exponent already.
  if ((value >= 1e21 || value <= -1e21) && Number.isInteger(value)) return BigInt(value).toString()
  return String(value)
}

function escapeLabelValue(value: string): string {
  return /[\\"\n]/.test(value) ? value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n') : value
}

function escapeHelp(help: string): string {
  return /[\\\n]/.test(help) ? help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n') : help
}

function checkMetricName(name: string): void {
  if (typeof name !== 'string' || !METRIC_NAME.test(name)) {
    throw new TypeError(`invalid metric name ${JSON.stringify(name)}: must match [a-zA-Z_:][a-zA-Z0-9_:]*`)
  }
}

function checkLabelNames(metric: string, labelNames: readonly string[], reserved: readonly string[]): void {
  const seen = new Set<string>()
  for (const label of labelNames) {
    if (typeof label !== 'string' || !LABEL_NAME.test(label)) {
      throw new TypeError(`invalid label name ${JSON.stringify(label)} for metric "${metric}": must match [a-zA-Z_][a-zA-Z0-9_]*`)
    }
    if (label.startsWith('__')) {
      throw new TypeError(`invalid label name "${label}" for metric "${metric}": names starting with "__" are reserved`)
    }
    if (reserved.includes(label)) {
      throw new TypeError(`invalid label name "${label}" for metric "${metric}": reserved by the metric type`)
    }
    if (seen.has(label)) throw new TypeError(`label name "${label}" is declared twice for metric "${metric}"`)
    seen.add(label)
  }
}

/** `{a="x",b="y"}`, or '' with no labels; `extra` is appended inside the braces (for `le`). */
function renderLabels(names: readonly string[], values: readonly string[], extra = ''): string {
  if (names.length === 0) return extra === '' ? '' : `{${extra}}`
  let out = '{'
  for (let i = 0; i < names.length; i++) {
    if (i > 0) out += ','
    out += `${names[i]}="${escapeLabelValue(values[i] as string)}"`
  }
  return extra === '' ? out + '}' : `${out},${extra}}`
}

type MetricType = 'counter' | 'gauge' | 'histogram'

abstract class Family<L extends string, S> {
  readonly name: string
  readonly help: string
  readonly labelNames: readonly L[]
  /** Every series, in first-use order, for rendering. */
  protected readonly series = new Set<S>()
  /**
   * Label values to series, one Map level per declared label name with the series at the leaves:
   * a lookup builds no key string, and no two label sets can collide.
   */
  private readonly index = new Map<string, unknown>()
  /** The single series of an unlabelled family, created up front so it renders as zero. */
  protected unlabelled: S | undefined
  /** `# HELP` and `# TYPE` lines. */
  protected readonly header: string

  constructor(type: MetricType, name: string, help: string, labelNames: readonly L[], reservedLabels: readonly string[]) {
    checkMetricName(name)
    if (typeof help !== 'string') throw new TypeError(`help for metric "${name}" must be a string`)
    checkLabelNames(name, labelNames, reservedLabels)
    this.name = name
    this.help = help
    this.labelNames = Object.freeze([...labelNames])
    this.header = `# HELP ${name} ${escapeHelp(help)}\n# TYPE ${name} ${type}\n`
  }

  /** Subclasses call this at the end of their constructor, once `create` can run. */
  protected init(): void {
    if (this.labelNames.length === 0) {
      this.unlabelled = this.create('')
      this.series.add(this.unlabelled)
    }
  }

  /** A new series whose rendered label block (`{a="x"}` or '') is `labels`. */
  protected abstract create(labels: string): S
  protected abstract renderSeries(out: string, series: S): string

  render(): string {
    let out = this.header
    for (const s of this.series) out = this.renderSeries(out, s)
    return out
  }

  /** The series for `labels`, created on first use. */
  protected resolve(labels: LabelValues<L> | undefined): S {
    if (labels === undefined && this.unlabelled !== undefined) return this.unlabelled
    const names = this.labelNames
    const n = names.length
    if (labels === undefined || labels === null || n === 0) {
      this.checkLabels(labels)
      return this.unlabelled as S
    }
    let count = 0
    for (const _ in labels) count++
    if (count !== n) this.labelError(labels)
    const record = labels as Record<string, unknown>
    let node: unknown = this.index
    for (let i = 0; i < n; i++) {
      // Keys are strings, so a value of any other type misses and is caught by checkLabels.
      node = (node as Map<string, unknown>).get(record[names[i] as string] as string)
      if (node === undefined) {
        this.checkLabels(labels)
        return this.add(record as Record<string, string>)
      }
    }
    return node as S
  }

  /** The series for `labels` if it exists, without creating it. */
  protected peek(labels: LabelValues<L> | undefined): S | undefined {
    this.checkLabels(labels)
    const names = this.labelNames
    if (names.length === 0) return this.unlabelled
    const record = labels as Record<string, string>
    let node: unknown = this.index
    for (let i = 0; i < names.length && node !== undefined; i++) {
      node = (node as Map<string, unknown>).get(record[names[i] as string] as string)
    }
    return node as S | undefined
  }

  /** Creates the series for a checked label set. */
  private add(record: Record<string, string>): S {
    const names = this.labelNames
    const last = names.length - 1
    let node = this.index
    for (let i = 0; i < last; i++) {
      const v = record[names[i] as string] as string
      let next = node.get(v) as Map<string, unknown> | undefined
      if (next === undefined) {
        next = new Map()
        node.set(v, next)
      }
      node = next
    }
    const s = this.create(renderLabels(names, names.map((n) => record[n] as string)))
    node.set(record[names[last] as string] as string, s)
    this.series.add(s)
    return s
  }

  /** Throws a TypeError unless `labels` has exactly the declared label names, with string values. */
  protected checkLabels(labels: LabelValues<L> | undefined): void {
    const names = this.labelNames
    const n = names.length
    if (labels === undefined || labels === null) {
      if (n === 0) return
      this.labelError({})
    }
    let count = 0
    for (const _ in labels) count++
    if (count !== n) this.labelError(labels)
    const record = labels as Record<string, unknown>
    for (let i = 0; i < n; i++) {
      if (typeof record[names[i] as string] !== 'string') this.labelError(labels)
    }
  }

  private labelError(labels: object): never {
    const record = labels as Record<string, unknown>
    const declared = this.labelNames as readonly string[]
    const list = declared.length === 0 ? 'none' : declared.join(', ')
    for (const k in record) {
      if (!declared.includes(k)) {
        throw new TypeError(`label "${k}" is not declared for metric "${this.name}" (declared: ${list})`)
      }
    }
    for (const k of declared) {
      if (!Object.hasOwn(record, k) || record[k] === undefined) throw new TypeError(`label "${k}" is missing for metric "${this.name}"`)
      if (typeof record[k] !== 'string') throw new TypeError(`label "${k}" of metric "${this.name}" must be a string`)
    }
    throw new TypeError(`bad labels for metric "${this.name}"`)
  }

  /** Forgets the series for `labels`; bound children taken for it stop being rendered. */
  remove(labels: LabelValues<L>): boolean {
    const names = this.labelNames
    if (names.length === 0) throw new TypeError(`metric "${this.name}" has no labels to remove by`)
    this.checkLabels(labels)
    const record = labels as Record<string, string>
    const path: Array<Map<string, unknown>> = [this.index]
    for (let i = 0; i < names.length - 1; i++) {
      const next = (path[i] as Map<string, unknown>).get(record[names[i] as string] as string)
      if (next === undefined) return false
      path.push(next as Map<string, unknown>)
    }
    const leaf = path[path.length - 1] as Map<string, unknown>
    const key = record[names[names.length - 1] as string] as string
    const s = leaf.get(key) as S | undefined
    if (s === undefined) return false
    this.series.delete(s)
    leaf.delete(key)
    // Drop the Map levels the removal left empty.
    for (let i = path.length - 1; i > 0 && (path[i] as Map<string, unknown>).size === 0; i--) {
      ;(path[i - 1] as Map<string, unknown>).delete(record[names[i - 1] as string] as string)
    }
    return true
  }
}

/* ---------------------------------------------------------------- counter */

export interface CounterChild {
  /** Adds `by` (default 1); throws a RangeError if it is negative or NaN. */
  inc(by?: number): void
  get(): number
}

class CounterSeries implements CounterChild {
  value = 0
  constructor(
    readonly labels: string,
    private readonly metric: string,
  ) {}
  inc(by = 1): void {
    if (!(by >= 0)) throw new RangeError(`counter "${this.metric}" cannot be increased by ${by}`)
    this.value += by
  }
  get(): number {
    return this.value
  }
}

export class Counter<L extends string = string> extends Family<L, CounterSeries> {
  /** Use `Registry.counter`. */
  constructor(name: string, help: string, labelNames: readonly L[] = []) {
    super('counter', name, help, labelNames, [])
    this.init()
  }
  protected create(labels: string): CounterSeries {
    return new CounterSeries(labels, this.name)
  }
  protected renderSeries(out: string, s: CounterSeries): string {
    return `${out}${this.name}${s.labels} ${formatValue(s.value)}\n`
  }
  /** `inc()`, `inc(by)` for an unlabelled counter; `inc(labels, by?)` for a labelled one. */
  inc(labels?: LabelValues<L> | number, by?: number): void {
    if (typeof labels === 'number') this.resolve(undefined).inc(labels)
    else this.resolve(labels).inc(by)
  }
  /** The current value; 0 for a label set never used (which this does not create). */
  get(labels?: LabelValues<L>): number {
    return this.peek(labels)?.value ?? 0
  }
  /** The bound series for `labels`, for hot paths. Repeated calls return the same child. */
  labels(labels?: LabelValues<L>): CounterChild {
    return this.resolve(labels)
  }
}

/* ------------------------------------------------------------------ gauge */

export interface GaugeChild {
  set(value: number): void
  inc(by?: number): void
  dec(by?: number): void
  get(): number
}

class GaugeSeries implements GaugeChild {
  value = 0
  constructor(readonly labels: string) {}
  set(value: number): void {
    this.value = value
  }
  inc(by = 1): void {
    this.value += by
  }
  dec(by = 1): void {
    this.value -= by
  }
  get(): number {
    return this.value
  }
}

export interface CollectedSample<L extends string = string> {
  /** May be left out for an unlabelled gauge. */
  labels?: LabelValues<L>
  value: number
}

/**
 * Called at render time. Returns the gauge's samples: a number for an unlabelled gauge, or one
 * entry per label set. A collected gauge renders exactly what its callback returns.
 */
export type GaugeCollect<L extends string = string> = () => readonly CollectedSample<L>[] | number

export class Gauge<L extends string = string> extends Family<L, GaugeSeries> {
  private readonly collect: GaugeCollect<L> | undefined

  /** Use `Registry.gauge`. */
  constructor(name: string, help: string, labelNames: readonly L[] = [], collect?: GaugeCollect<L>) {
    super('gauge', name, help, labelNames, [])
    if (collect !== undefined && typeof collect !== 'function') {
      throw new TypeError(`collect for gauge "${name}" must be a function`)
    }
    this.collect = collect
    if (collect === undefined) this.init()
  }
  protected create(labels: string): GaugeSeries {
    return new GaugeSeries(labels)
  }
  protected renderSeries(out: string, s: GaugeSeries): string {
    return `${out}${this.name}${s.labels} ${formatValue(s.value)}\n`
  }

  override render(): string {
    if (this.collect === undefined) return super.render()
    return this.renderCollected(this.collect)
  }

  private renderCollected(collect: GaugeCollect<L>): string {
    const result = collect()
    let out = this.header
    if (typeof result === 'number') {
      if (this.labelNames.length > 0) {
        throw new TypeError(`collect for gauge "${this.name}" returned a number, but the gauge has labels (${this.labelNames.join(', ')})`)
      }
      return `${out}${this.name} ${formatValue(result)}\n`
    }
    if (!Array.isArray(result)) {
      throw new TypeError(`collect for gauge "${this.name}" must return a number or an array of { labels, value }`)
    }
    const seen = new Set<string>()
    for (const sample of result as readonly CollectedSample<L>[]) {
      if (typeof sample !== 'object' || sample === null || typeof sample.value !== 'number') {
        throw new TypeError(`collect for gauge "${this.name}" returned a sample without a numeric value`)
      }
      this.checkLabels(sample.labels)
      const values = this.labelNames.map((n) => (sample.labels as Record<string, string>)[n] as string)
      // Length-prefixed, so that distinct label sets never share a key.
      const key = values.map((v) => `${v.length}:${v}`).join('')
      if (seen.has(key)) {
        throw new TypeError(`collect for gauge "${this.name}" returned the same label set twice`)
      }
      seen.add(key)
      out += `${this.name}${renderLabels(this.labelNames, values)} ${formatValue(sample.value)}\n`
    }
    return out
  }

  private live(): void {
    if (this.collect !== undefined) {
      throw new TypeError(`gauge "${this.name}" takes its values from its collect callback; it cannot be set`)
    }
  }

  set(value: number, labels?: LabelValues<L>): void {
    this.live()
    this.resolve(labels).value = value
  }
  /** `inc()`, `inc(by)` for an unlabelled gauge; `inc(labels, by?)` for a labelled one. */
  inc(labels?: LabelValues<L> | number, by?: number): void {
    this.live()
    if (typeof labels === 'number') this.resolve(undefined).inc(labels)
    else this.resolve(labels).inc(by)
  }
  /** `dec()`, `dec(by)` for an unlabelled gauge; `dec(labels, by?)` for a labelled one. */
  dec(labels?: LabelValues<L> | number, by?: number): void {
    this.live()
    if (typeof labels === 'number') this.resolve(undefined).dec(labels)
    else this.resolve(labels).dec(by)
  }
  /** The current value; 0 for a label set never used (which this does not create). */
  get(labels?: LabelValues<L>): number {
    this.live()
    return this.peek(labels)?.value ?? 0
  }
  /** The bound series for `labels`, for hot paths. Repeated calls return the same child. */
  labels(labels?: LabelValues<L>): GaugeChild {
    this.live()
    return this.resolve(labels)
  }
}

/* -------------------------------------------------------------- histogram */

export interface HistogramChild {
  observe(value: number): void
}

class HistogramSeries implements HistogramChild {
  /** Per-bucket (not cumulative) counts; the last slot is the +Inf bucket. */
  readonly counts: Float64Array
  sum = 0
  count = 0
  constructor(
    readonly labels: string,
    private readonly bounds: Float64Array,
  ) {
    this.counts = new Float64Array(bounds.length + 1)
  }
  observe(value: number): void {
    // First bound >= value; NaN compares false everywhere and lands in +Inf.
    const bounds = this.bounds
    let lo = 0
    let hi = bounds.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (value <= (bounds[mid] as number)) hi = mid
      else lo = mid + 1
    }
    ;(this.counts[lo] as number)++
    this.count++
    this.sum += value
  }
}

export class Histogram<L extends string = string> extends Family<L, HistogramSeries> {
  /** Upper bounds without +Inf, strictly increasing. */
  readonly buckets: readonly number[]
  private readonly bounds: Float64Array
  /** `le="..."` for each bucket, +Inf last. */
  private readonly leLabels: readonly string[]

  /** Use `Registry.histogram`. */
  constructor(name: string, help: string, buckets: readonly number[], labelNames: readonly L[] = []) {
    super('histogram', name, help, labelNames, ['le'])
    if (!Array.isArray(buckets)) throw new TypeError(`buckets for histogram "${name}" must be an array of numbers`)
    const bounds = buckets.length > 0 && buckets[buckets.length - 1] === Infinity ? buckets.slice(0, -1) : [...buckets]
    for (let i = 0; i < bounds.length; i++) {
      const b = bounds[i]
      if (typeof b !== 'number' || !Number.isFinite(b)) {
        throw new RangeError(`bucket ${String(b)} of histogram "${name}" is not a finite number (+Inf is implied)`)
      }
      if (i > 0 && !(b > (bounds[i - 1] as number))) {
        throw new RangeError(`buckets of histogram "${name}" must be strictly increasing (${bounds[i - 1]} then ${b})`)
      }
    }
    this.buckets = Object.freeze(bounds)
    this.bounds = Float64Array.from(bounds)
    this.leLabels = [...bounds.map((b) => `le="${formatValue(b)}"`), 'le="+Inf"']
    this.init()
  }
  protected create(labels: string): HistogramSeries {
    return new HistogramSeries(labels, this.bounds)
  }
  protected renderSeries(out: string, s: HistogramSeries): string {
    const name = this.name
    // Series labels end in '}'; the bucket lines put le inside the same braces.
    const open = s.labels === '' ? `${name}_bucket{` : `${name}_bucket${s.labels.slice(0, -1)},`
    let cumulative = 0
    for (let i = 0; i < this.leLabels.length; i++) {
      cumulative += s.counts[i] as number
      out += `${open}${this.leLabels[i]}} ${formatValue(cumulative)}\n`
    }
    return `${out}${name}_sum${s.labels} ${formatValue(s.sum)}\n${name}_count${s.labels} ${formatValue(s.count)}\n`
  }
  /** Records `value` for the series with `labels` (none for an unlabelled histogram). */
  observe(value: number, labels?: LabelValues<L>): void {
    this.resolve(labels).observe(value)
  }
  /** The bound series for `labels`, for hot paths. Repeated calls return the same child. */
  labels(labels?: LabelValues<L>): HistogramChild {
    return this.resolve(labels)
  }
}

/* --------------------------------------------------------------- registry */

export class Registry {
  private readonly families: Array<{ render(): string }> = []
  /** Every sample name a family can emit, so that e.g. a counter "x_count" cannot shadow histogram "x". */
  private readonly claimed = new Map<string, string>()

  counter<L extends string = never>(name: string, help: string, labelNames?: readonly L[]): Counter<L> {
    checkMetricName(name)
    this.checkFree(name, [name])
    const counter = new Counter<L>(name, help, labelNames)
    this.add(counter, name, [name])
    return counter
  }

  gauge<L extends string = never>(name: string, help: string, labelNames?: readonly L[], collect?: GaugeCollect<L>): Gauge<L> {
    checkMetricName(name)
    this.checkFree(name, [name])
    const gauge = new Gauge<L>(name, help, labelNames, collect)
    this.add(gauge, name, [name])
    return gauge
  }

  histogram<L extends string = never>(name: string, help: string, buckets: readonly number[], labelNames?: readonly L[]): Histogram<L> {
    checkMetricName(name)
    const names = [name, `${name}_bucket`, `${name}_sum`, `${name}_count`]
    this.checkFree(name, names)
    const histogram = new Histogram<L>(name, help, buckets, labelNames)
    this.add(histogram, name, names)
    return histogram
  }

  /** The exposition text of every family, in registration order. */
  render(): string {
    let out = ''
    for (const family of this.families) out += family.render()
    return out
  }

  private checkFree(name: string, names: readonly string[]): void {
    for (const n of names) {
      const owner = this.claimed.get(n)
      if (owner === undefined) continue
      throw new TypeError(
        owner === name ? `metric "${name}" is already registered` : `metric "${name}" clashes with metric "${owner}" (both emit "${n}")`,
      )
    }
  }

  private add(family: { render(): string }, name: string, names: readonly string[]): void {
    for (const n of names) this.claimed.set(n, name)
    this.families.push(family)
  }
}
