/** What every metric family shares: label sets to series, checks of names and labels, and the text format's escaping. */
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

export function checkMetricName(name: string): void {
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
export function renderLabels(names: readonly string[], values: readonly string[], extra = ''): string {
  if (names.length === 0) return extra === '' ? '' : `{${extra}}`
  let out = '{'
  for (let i = 0; i < names.length; i++) {
    if (i > 0) out += ','
    out += `${names[i]}="${escapeLabelValue(values[i] as string)}"`
  }
  return extra === '' ? out + '}' : `${out},${extra}}`
}

type MetricType = 'counter' | 'gauge' | 'histogram'

export abstract class Family<L extends string, S> {
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
