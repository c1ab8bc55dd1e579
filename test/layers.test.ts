/**
 * The source's import graph: no cycles anywhere, and arrows that point one way — shared ← hardware ←
 * agent, relay; within relay, the transports and the Kinesis API above the stream domain, the domain
 * above storage (DESIGN.md). Reads static `import … from` and `export … from` lines, type-only ones
 * included.
 */
import t from 'tap'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, normalize } from 'node:path'
import { ROOT } from './helpers/relay.js'

const SOURCE_DIRS = ['shared', 'hardware', 'agent', 'relay']
const IMPORT = /^\s*(?:import|export)\b[^'"]*?from\s*['"](\.{1,2}\/[^'"]+)['"]/gm

function sourceFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir)).flatMap((name) => {
    const path = join(dir, name)
    if (statSync(join(ROOT, path)).isDirectory()) return name === 'node_modules' || name === 'build' ? [] : sourceFiles(path)
    return name.endsWith('.ts') && !name.endsWith('.d.ts') ? [path] : []
  })
}

function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>()
  for (const file of SOURCE_DIRS.flatMap(sourceFiles)) {
    const text = readFileSync(join(ROOT, file), 'utf8')
    const targets = [...text.matchAll(IMPORT)].map((m) => normalize(join(dirname(file), m[1]!)).replace(/\.js$/, '.ts'))
    graph.set(file, targets.filter((target) => graph.has(target) || SOURCE_DIRS.some((d) => target.startsWith(d + '/'))))
  }
  return graph
}

/** Strongly connected components of more than one file (Tarjan). */
function cycles(graph: Map<string, string[]>): string[][] {
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const onStack = new Set<string>()
  const found: string[][] = []
  const visit = (v: string) => {
    index.set(v, index.size)
    low.set(v, index.get(v)!)
    stack.push(v)
    onStack.add(v)
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w)
        low.set(v, Math.min(low.get(v)!, low.get(w)!))
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!))
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = []
      let w: string
      do {
        w = stack.pop()!
        onStack.delete(w)
        component.push(w)
      } while (w !== v)
      if (component.length > 1) found.push(component.sort())
    }
  }
  for (const v of graph.keys()) if (!index.has(v)) visit(v)
  return found
}

/**
 * The layer of a source file; a file may import only from its own layer or lower ones. Within the
 * relay: its transports and APIs (MQTT broker, HTTP routes, the Kinesis API, the web console, the CLI
 * and the assembly) above the stream and video domain, the domain above storage (shard logs,
 * metadata). The console's answer shapes (relay/console/views.ts, types only) are the domain's: the
 * fleet and the rates produce them.
 */
function layerOf(file: string): { name: string; rank: number } {
  const top = file.split('/')[0]
  if (top === 'shared') return { name: 'shared', rank: 0 }
  if (top === 'hardware') return { name: 'hardware', rank: 1 }
  if (top === 'agent') return { name: 'agent', rank: 2 }
  if (/^relay\/(log|meta)\//.test(file)) return { name: 'relay storage', rank: 2 }
  if (file === 'relay/console/views.ts') return { name: 'relay domain', rank: 3 }
  if (/^relay\/(kinesis|firehose|cli|console)\//.test(file) || /^relay\/(relay|routes|admin|http|broker|packet-guard|demo)\.ts$/.test(file)) return { name: 'relay API and transports', rank: 4 }
  return { name: 'relay domain', rank: 3 }
}

t.test('the source has no import cycle', async (t) => {
  const graph = importGraph()
  t.ok(graph.size > 50, `read the source (${graph.size} files)`)
  t.same(cycles(graph), [], 'no file reaches itself through its imports')
})

t.test('imports point one way: API → domain → storage, shared ← hardware ← agent and relay', async (t) => {
  const graph = importGraph()
  const wrong: string[] = []
  for (const [file, targets] of graph) {
    const from = layerOf(file)
    for (const target of targets) {
      const to = layerOf(target)
      const agentAndRelay = (from.name === 'agent') !== (to.name === 'agent') && from.rank >= 2 && to.rank >= 2
      if (to.rank > from.rank || agentAndRelay) wrong.push(`${file} (${from.name}) imports ${target} (${to.name})`)
    }
  }
  t.same(wrong, [], 'no import points up a layer, and agent and relay never import each other')
})

t.test('the check itself sees a cycle and an upward import', async (t) => {
  t.same(cycles(new Map([['a', ['b']], ['b', ['c']], ['c', ['a']], ['d', ['a']]])), [['a', 'b', 'c']])
  t.ok(layerOf('relay/streams.ts').rank < layerOf('relay/kinesis/context.ts').rank, 'the domain sits below the Kinesis API')
  t.ok(layerOf('relay/log/filelog.ts').rank < layerOf('relay/streams.ts').rank, 'storage sits below the domain')
})
