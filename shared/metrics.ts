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

import { checkMetricName } from './metrics/family.js'
import { Counter, Gauge, Histogram, type GaugeCollect } from './metrics/kinds.js'

export { formatValue, type LabelValues } from './metrics/family.js'
export * from './metrics/kinds.js'

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

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
