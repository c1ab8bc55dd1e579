/** The three kinds of metric: counters, gauges (set, or collected at render time) and histograms. */
import { Family, formatValue, renderLabels, type LabelValues } from './family.js'

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
