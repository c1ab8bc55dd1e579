/**
 * Where a process's CPU went, from a V8 CPU profile (`node --cpu-prof`): the top frames by self time
 * and the project's own functions by total (inclusive) time, each as a share of the time the process
 * was busy and as microseconds per record, optionally over a window of the profile only (the
 * profile's timestamps are CLOCK_MONOTONIC microseconds, as `process.hrtime` in another process).
 * Samples are weighted by the time to the next sample, as DevTools does.
 * Usage: npx tsx bench/profile-summary.ts FILE.cpuprofile [records] [startUs endUs] [top=25]
 * Prints CSV on stdout: one table of self time, a blank line, one of total time in project code.
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

interface CallFrame { functionName: string; url: string; lineNumber: number; columnNumber: number }
interface ProfileNode { id: number; callFrame: CallFrame; children?: number[] }
export interface CpuProfile { nodes: ProfileNode[]; startTime: number; endTime: number; samples: number[]; timeDeltas: number[] }

export interface Window { startUs: number; endUs: number }

export interface FrameRow {
  frame: string
  where: string
  us: number
  /** Share of the busy time in the window (everything but V8's `(idle)`). */
  share: number
  usPerRecord: number
}

export interface Summary {
  /** Microseconds sampled in the window, idle included; and busy (not idle). */
  windowUs: number
  busyUs: number
  idleUs: number
  gcUs: number
  self: FrameRow[]
  total: FrameRow[]
  /** Self time by where the code lives: project, a dependency, Node's own JavaScript, native. */
  byOrigin: FrameRow[]
}

const SPECIAL = new Set(['(idle)', '(program)', '(garbage collector)', '(root)'])

/** Where a frame's code lives, short: `relay/http.js:120`, `aedes/lib/client.js:40`, `node:net:300`, `native`. */
function whereOf(f: CallFrame): string {
  if (!f.url) return SPECIAL.has(f.functionName) ? '' : 'native'
  const line = f.lineNumber + 1
  const modules = f.url.lastIndexOf('/node_modules/')
  if (modules !== -1) return `${f.url.slice(modules + 14)}:${line}`
  const dist = f.url.lastIndexOf('/dist/')
  if (dist !== -1) return `${f.url.slice(dist + 6)}:${line}`
  if (f.url.startsWith('node:')) return `${f.url}:${line}`
  return `${f.url.replace(/^file:\/\//, '')}:${line}`
}

function originOf(f: CallFrame): string {
  if (SPECIAL.has(f.functionName)) return f.functionName
  if (!f.url) return 'native (C++ bindings, the addon, V8 builtins called as functions)'
  const modules = f.url.lastIndexOf('/node_modules/')
  if (modules !== -1) {
    const rest = f.url.slice(modules + 14).split('/')
    return `dependency ${rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]}`
  }
  if (f.url.startsWith('node:')) return "Node's own JavaScript (node:*)"
  const dist = f.url.lastIndexOf('/dist/')
  if (dist !== -1) return `project ${f.url.slice(dist + 6).split('/')[0]}/`
  return 'other'
}

const isProject = (f: CallFrame) => f.url.includes('/dist/') && !f.url.includes('/node_modules/')

export function summarise(profile: CpuProfile, records: number, window?: Window, top = 25): Summary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const key = (f: CallFrame) => `${f.functionName || '(anonymous)'}\u0000${whereOf(f)}`
  const self = new Map<string, number>()
  const total = new Map<string, number>()
  const origin = new Map<string, number>()
  let windowUs = 0
  let idleUs = 0
  let gcUs = 0
  let t = profile.startTime
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i] ?? 0
    const weight = profile.timeDeltas[i + 1] ?? 0
    if (window && (t < window.startUs || t >= window.endUs)) continue
    const node = byId.get(profile.samples[i]!)!
    const f = node.callFrame
    windowUs += weight
    if (f.functionName === '(idle)') { idleUs += weight; continue }
    if (f.functionName === '(garbage collector)') gcUs += weight
    self.set(key(f), (self.get(key(f)) ?? 0) + weight)
    origin.set(originOf(f), (origin.get(originOf(f)) ?? 0) + weight)
    const seen = new Set<string>()
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const cf = byId.get(id)!.callFrame
      if (!isProject(cf)) continue
      const k = key(cf)
      if (seen.has(k)) continue
      seen.add(k)
      total.set(k, (total.get(k) ?? 0) + weight)
    }
  }
  const busyUs = windowUs - idleUs
  const rows = (m: Map<string, number>, n: number): FrameRow[] => [...m].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, us]) => {
    const [frame, where] = k.split('\u0000') as [string, string]
    return { frame, where, us, share: busyUs ? us / busyUs : 0, usPerRecord: records ? us / records : 0 }
  })
  const originRows = [...origin].sort((a, b) => b[1] - a[1]).map(([frame, us]) => ({ frame, where: '', us, share: busyUs ? us / busyUs : 0, usPerRecord: records ? us / records : 0 }))
  return { windowUs, busyUs, idleUs, gcUs, self: rows(self, top), total: rows(total, top), byOrigin: originRows }
}

const csv = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s)

/** The summary as CSV: a line of totals, then self time, total time in project code, self time by origin. */
export function summaryCsv(label: string, s: Summary, records: number): string {
  const lines = [
    'path,records,window_ms,busy_ms,busy_share_of_window,gc_ms,busy_us_per_record',
    `${label},${records},${(s.windowUs / 1000).toFixed(0)},${(s.busyUs / 1000).toFixed(0)},${(s.busyUs / s.windowUs).toFixed(2)},${(s.gcUs / 1000).toFixed(0)},${records ? (s.busyUs / records).toFixed(3) : ''}`,
    '',
  ]
  const table = (kind: string, rows: FrameRow[]) => {
    lines.push(`path,${kind},rank,function,where,ms,share_of_busy,us_per_record`)
    rows.forEach((r, i) => lines.push(`${label},${kind},${i + 1},${csv(r.frame)},${csv(r.where)},${(r.us / 1000).toFixed(1)},${(r.share * 100).toFixed(1)}%,${r.usPerRecord.toFixed(3)}`))
    lines.push('')
  }
  table('self', s.self)
  table('total_in_project', s.total)
  table('self_by_origin', s.byOrigin)
  return lines.join('\n')
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [file, records, start, end, top] = process.argv.slice(2)
  if (!file) throw new TypeError('usage: profile-summary.ts FILE.cpuprofile [records] [startUs endUs] [top]')
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile
  const n = Number(records ?? 0)
  const window = start && end ? { startUs: Number(start), endUs: Number(end) } : undefined
  console.log(summaryCsv(file, summarise(profile, n, window, Number(top ?? 25)), n))
}
