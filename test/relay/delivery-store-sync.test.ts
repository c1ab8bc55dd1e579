/**
 * "put resolves once the object is durable", checked at the system-call boundary: a child process
 * puts an object with the files store under strace, and the test reads its system calls in order.
 * Before the put resolves, the temporary file's bytes must be written and fsynced, the file renamed
 * onto the key, and the directory fsynced after the rename (else a crash can lose the rename). A
 * plain writeFile in the same child is read the same way and found not durable, so the reading can
 * fail.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT } from '../helpers/relay.js'
import { tempDir } from '../helpers/tmp.js'

interface Durability { written: boolean; fileSynced: boolean; renamed: boolean; dirSyncedAfterRename: boolean; resolvedAfter: boolean }

/**
 * For the object at `path` (written through a temporary file in its directory, or in place): what
 * had completed when the child printed `marker`. System calls count when they return.
 */
function durabilityIn(trace: string, path: string, marker: string): Durability {
  const dir = path.slice(0, path.lastIndexOf('/'))
  const state: Durability = { written: false, fileSynced: false, renamed: false, dirSyncedAfterRename: false, resolvedAfter: false }
  const pending = new Map<string, string>() // pid → the start of its unfinished call
  const isTarget = (p: string) => p === path || (p.startsWith(`${dir}/.tributary-tmp-`) && !state.renamed)
  for (const raw of trace.split('\n')) {
    let m = /^(\d+)\s+(.*)$/.exec(raw)
    if (!m) continue
    let [, pid, line] = m as unknown as [string, string, string]
    if (line.endsWith('<unfinished ...>')) { pending.set(pid, line.slice(0, -'<unfinished ...>'.length)); continue }
    m = /^<\.\.\. \w+ resumed>(.*)$/.exec(line)
    if (m) { line = (pending.get(pid) ?? '') + m[1]; pending.delete(pid) }
    if (!/= \d+$/.test(line)) continue // failed calls do not count
    const call = /^(\w+)\((\d+)<([^>]*)>/.exec(line)
    if (call) {
      const [, name, fd, file] = call as unknown as [string, string, string, string]
      if (/^(p?write(v|64)?|pwritev)$/.test(name) && isTarget(file)) state.written = true
      else if ((name === 'fsync' || name === 'fdatasync') && isTarget(file) && state.written) state.fileSynced = true
      else if ((name === 'fsync' || name === 'fdatasync') && file === dir && state.renamed) state.dirSyncedAfterRename = true
      else if (name === 'write' && fd === '1' && line.includes(marker)) {
        state.resolvedAfter = true
        return state
      }
      continue
    }
    if (/^rename(at2?)?\(/.test(line) && line.includes(`${dir}/.tributary-tmp-`) && line.includes(`"${path}"`)) state.renamed = true
  }
  return state
}

t.test('files: put resolves only after the bytes are fsynced, renamed onto the key and the directory fsynced', async (t) => {
  const dir = tempDir(t)
  const sink = join(dir, 'sink')
  const child = join(dir, 'child.mts')
  writeFileSync(child, `
import { writeFile } from 'node:fs/promises'
import { FileObjectStore } from ${JSON.stringify(join(ROOT, 'relay/delivery/store/files.ts'))}
const store = new FileObjectStore(${JSON.stringify(sink)})
await store.put('events/2024/01/02/03/batch', Buffer.alloc(65536, 'r'), { contentType: 'application/json' })
process.stdout.write('PUT-RESOLVED\\n')
await writeFile(${JSON.stringify(join(dir, 'naive'))}, Buffer.alloc(65536, 'n'))
process.stdout.write('NAIVE-RESOLVED\\n')
`)
  const traceFile = join(dir, 'put.strace')
  const run = spawn('strace', ['-f', '-qq', '-yy', '-s', '64', '-o', traceFile, '-e', 'trace=write,pwrite64,writev,pwritev,fsync,fdatasync,rename,renameat,renameat2',
    process.execPath, '--import', 'tsx', child], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  run.stdout.on('data', (b: Buffer) => { out += b })
  run.stderr.on('data', (b: Buffer) => { err += b })
  const code = await new Promise<number | null>((resolve) => run.on('exit', resolve))
  t.equal(code, 0, `the child ran (${err.slice(-500)})`)
  t.match(out, /PUT-RESOLVED\nNAIVE-RESOLVED/)
  const trace = readFileSync(traceFile, 'utf8')
  t.same(durabilityIn(trace, join(sink, 'events/2024/01/02/03/batch'), 'PUT-RESOLVED'),
    { written: true, fileSynced: true, renamed: true, dirSyncedAfterRename: true, resolvedAfter: true }, 'the store\'s put is durable when it resolves')
  t.match(durabilityIn(trace, join(dir, 'naive'), 'NAIVE-RESOLVED'),
    { written: true, fileSynced: false, dirSyncedAfterRename: false, resolvedAfter: true }, 'a plain writeFile is found not durable: the reading can fail')
})
