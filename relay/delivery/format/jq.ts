/**
 * Dynamic partitioning with jq, as Firehose does: one long-running jq process per partitioner,
 * fed one line per record and answering one line per record, in order.
 *
 * jq stops at the first input that is not JSON, so it reads raw lines (-R) and parses each with
 * `fromjson` inside `try`; a record holding a newline (JSON whitespace, or invalid) is re-serialised
 * on one line first. Every key's value must be a scalar (Firehose's rule): a string as it is, a
 * number or boolean as its JSON text; null/missing, an empty string, an object or an array is an
 * error for that record.
 *
 * The expressions come from API callers, so jq runs with an empty environment (`$ENV` and `env` are
 * refused too) and each call has a deadline: an expression can compile and then never finish
 * (`last(range(1e12))`), and a jq that hangs is killed rather than waited for.
 */
import { spawn as nodeSpawn } from 'node:child_process'
import type { ChildProcessWithoutNullStreams } from 'node:child_process'
import { systemClock, type Clock } from '../../../hardware/index.js'
import type { OutputRecord } from '../types.js'
import { FormatError, FormatErrorCode } from './errors.js'

export type PartitionKeys = Record<string, string>
export type PartitionAnswer = PartitionKeys | { error: string }

/** Starts jq: node's spawn by default, so a test can put something else there. */
export type SpawnJq = (path: string, args: string[]) => ChildProcessWithoutNullStreams

export interface JqPartitionerOptions {
  /** Debian's jq 1.6 by default. */
  jqPath?: string
  spawn?: SpawnJq
  /** Times the call deadlines and close's grace period; the system clock by default. */
  clock?: Clock
  /**
   * How long a call may wait for its answers once it is the oldest unanswered one, plus
   * PER_RECORD_TIMEOUT_MS for each of its records; 30 s by default. Past it jq is killed and the call
   * rejected with a JqTimeoutError.
   */
  callTimeoutMs?: number
  /** How long close() lets jq finish the pending calls before killing it; 1 s by default. */
  closeGraceMs?: number
}

const DEFAULT_JQ = '/usr/bin/jq'
const DEFAULT_CALL_TIMEOUT_MS = 30_000
/** jq answers a line in 5 to 20 µs: 0.1 ms per record leaves a wide margin for a large call. */
export const PER_RECORD_TIMEOUT_MS = 0.1
const DEFAULT_CLOSE_GRACE_MS = 1_000
// An empty environment: nothing of the relay's (secrets included) is visible to jq; jq needs no PATH.
const defaultSpawn: SpawnJq = (path, args) => nodeSpawn(path, args, { stdio: ['pipe', 'pipe', 'pipe'], env: {} })
/**
 * jq builtins that read further input or end the process would break one answer per line; `$ENV`
 * and `env` would read the environment (empty, but refused so a caller learns it at once).
 * `.env` (a field) is allowed.
 */
const FORBIDDEN = /(?<![\w$.])(inputs?|halt|halt_error|input_line_number|debug|stderr|env)\b|(\$__loc__|\$ENV)\b/

/**
 * A call whose answers did not come before its deadline: jq was killed. Its code is JQ_UNAVAILABLE
 * (errors.ts, which this file does not own, has no JQ_TIMEOUT yet); `timeoutMs` tells it apart.
 */
export class JqTimeoutError extends FormatError {
  readonly timeoutMs: number
  constructor(message: string, timeoutMs: number) {
    super(FormatErrorCode.JQ_UNAVAILABLE, message)
    this.name = 'JqTimeoutError'
    this.timeoutMs = timeoutMs
  }
}
/** Exit code of jq for a program that does not compile. */
const JQ_COMPILE_ERROR = 3
const NEWLINE = 0x0a
const NL = Buffer.from('\n')
/** A call still pending when the process has died this often is rejected (a record that kills jq). */
const MAX_DEATHS_PER_CALL = 2

/**
 * The jq program: one output line per input line, `[0, why]` for a line that is not JSON, else
 * `[1, k1, k2, …]` with each key's values collected (`[v…]`) or its error (`{e}`). Scalars are
 * checked in JavaScript, which costs jq less (about 200,000 lines/s of CPU against 55,000 with the
 * checks in jq). Nothing outside a `try` raises an error: jq 1.6 lets an error raised downstream of
 * a `try` be caught by it (jq issue 1859), which would blame the wrong key.
 */
export function jqProgram(keys: PartitionKeys): string {
  const values = Object.values(keys).map((expr) => `(try [${expr}] catch {e: tostring})`)
  return `[try (fromjson | [1, ${values.join(', ')}]) catch [0, tostring]] | .[0] // [0, "no value"]`
}

/** One key's collected jq values as a partition value, or why they are not one. */
function partitionValue(name: string, got: unknown): string | { error: string } {
  if (!Array.isArray(got)) return { error: `${name}: ${String((got as { e?: unknown } | null)?.e)}` }
  if (got.length !== 1) return { error: `${name} gave ${got.length} values, not one` }
  const v: unknown = got[0]
  if (typeof v === 'string') return v === '' ? { error: `${name} is an empty string` } : v
  if (typeof v === 'number' || typeof v === 'boolean') return JSON.stringify(v)
  if (v === null || v === undefined) return { error: `${name} is null or missing` }
  return { error: `${name} is ${Array.isArray(v) ? 'an array' : 'an object'}, not a scalar` }
}

/** A reply line as a record's answer. */
export function parseJqAnswer(names: readonly string[], line: string): PartitionAnswer {
  let reply: unknown
  try {
    reply = JSON.parse(line)
  } catch {
    return { error: `jq answered what is not JSON: ${line.slice(0, 200)}` }
  }
  if (!Array.isArray(reply) || reply.length === 0) return { error: `jq answered an unexpected line: ${line.slice(0, 200)}` }
  if (reply[0] === 0) return { error: `the record is not JSON: ${String(reply[1])}` }
  const keys: PartitionKeys = {}
  for (let i = 0; i < names.length; i++) {
    const value = partitionValue(names[i]!, reply[i + 1])
    if (typeof value !== 'string') return value
    keys[names[i]!] = value
  }
  return keys
}

function run(spawn: SpawnJq, path: string, args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(path, args)
    let stderr = ''
    child.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s })
    child.stdout.resume()
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stderr: stderr.trim() }))
    child.stdin.end()
  })
}

interface Pending {
  answers: (PartitionAnswer | undefined)[]
  /** Lines sent to jq, and which answer each fills. */
  lines: Buffer[]
  slots: number[]
  /** Lines answered so far. */
  next: number
  deaths: number
  resolve: (answers: PartitionAnswer[]) => void
  reject: (err: Error) => void
}

export class JqPartitioner {
  readonly keyNames: readonly string[]
  private readonly program: string
  private readonly jqPath: string
  private readonly spawnJq: SpawnJq
  private child: ChildProcessWithoutNullStreams | undefined
  private readonly queue: Pending[] = []
  private tail = ''
  private stderr = ''
  private closed = false
  private readonly clock: Clock
  private readonly callTimeoutMs: number
  private readonly closeGraceMs: number
  /** Cancels the deadline of the oldest pending call (queue[0]). */
  private cancelDeadline: () => void = () => {}

  private constructor(keys: PartitionKeys, options: JqPartitionerOptions) {
    this.keyNames = Object.keys(keys)
    this.program = jqProgram(keys)
    this.jqPath = options.jqPath ?? DEFAULT_JQ
    this.spawnJq = options.spawn ?? defaultSpawn
    this.clock = options.clock ?? systemClock
    this.callTimeoutMs = options.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS
    this.closeGraceMs = options.closeGraceMs ?? DEFAULT_CLOSE_GRACE_MS
  }

  /**
   * Checks every expression with jq (a FormatError JQ_BAD_EXPRESSION names the one that does not
   * compile) and starts the process.
   */
  static async create(keys: PartitionKeys, options: JqPartitionerOptions = {}): Promise<JqPartitioner> {
    const p = new JqPartitioner(keys, options)
    if (p.keyNames.length === 0) throw new FormatError(FormatErrorCode.JQ_BAD_EXPRESSION, 'dynamic partitioning needs at least one key')
    for (const [name, expr] of Object.entries(keys)) {
      const bad = (why: string, cause?: unknown) =>
        new FormatError(FormatErrorCode.JQ_BAD_EXPRESSION, `partition key "${name}": the jq expression ${JSON.stringify(expr)} ${why}`, { cause })
      if (name === '') throw new FormatError(FormatErrorCode.JQ_BAD_EXPRESSION, 'a partition key needs a name')
      if (typeof expr !== 'string' || expr.trim() === '') throw bad('is empty')
      const forbidden = FORBIDDEN.exec(expr)
      if (forbidden) {
        const word = forbidden[1] ?? forbidden[2]!
        throw bad(word === 'env' || word === '$ENV'
          ? `uses ${word}: the relay's environment is not for partition keys`
          : `uses ${word}, which would read other records or stop jq`)
      }
      // Compiled, not run: after `empty` nothing is evaluated (an unused def would not be checked at all).
      let result: { code: number | null; stderr: string }
      try {
        result = await run(p.spawnJq, p.jqPath, ['-n', `empty | (${expr})`])
      } catch (err) {
        throw new FormatError(FormatErrorCode.JQ_UNAVAILABLE, `cannot run ${p.jqPath}: ${(err as Error).message}`, { cause: err })
      }
      if (result.code === JQ_COMPILE_ERROR) throw bad(`does not compile: ${result.stderr}`)
      if (result.code !== 0) throw bad(`was refused by jq (exit ${result.code}): ${result.stderr}`)
    }
    const whole = await run(p.spawnJq, p.jqPath, ['-R', p.program])
    if (whole.code !== 0) throw new FormatError(FormatErrorCode.JQ_BAD_EXPRESSION, `the partition keys together do not compile: ${whole.stderr}`)
    p.start()
    return p
  }

  /** The running jq's process id (undefined between a death and the next call). */
  get pid(): number | undefined {
    return this.child?.pid
  }

  /** Each record's partition keys, or why they could not be extracted; one answer per record, in order. */
  keys(records: readonly OutputRecord[]): Promise<PartitionAnswer[]> {
    if (this.closed) return Promise.reject(new FormatError(FormatErrorCode.JQ_UNAVAILABLE, 'the jq partitioner is closed'))
    const answers: (PartitionAnswer | undefined)[] = new Array(records.length)
    const lines: Buffer[] = []
    const slots: number[] = []
    records.forEach((record, i) => {
      let line = record.data
      if (line.indexOf(NEWLINE) >= 0) {
        try {
          line = Buffer.from(JSON.stringify(JSON.parse(line.toString('utf8'))))
        } catch (err) {
          answers[i] = { error: `the record is not JSON: ${(err as Error).message}` }
          return
        }
      }
      lines.push(line)
      slots.push(i)
    })
    if (lines.length === 0) return Promise.resolve(answers as PartitionAnswer[])
    return new Promise((resolve, reject) => {
      const pending: Pending = { answers, lines, slots, next: 0, deaths: 0, resolve, reject }
      this.queue.push(pending)
      if (this.child === undefined) this.start()
      else {
        this.send(pending)
        if (this.queue.length === 1) this.armDeadline()
      }
    })
  }

  /**
   * Ends jq once it has answered the pending calls, or kills it when it has not exited after the
   * grace period (those calls are then rejected); calls after this are refused.
   */
  async close(): Promise<void> {
    this.closed = true
    const child = this.child
    if (child === undefined) return
    await new Promise<void>((resolve) => {
      const cancelGrace = this.clock.after(this.closeGraceMs, () => child.kill('SIGKILL'))
      child.once('close', () => { cancelGrace(); resolve() })
      child.stdin.end()
    })
  }

  /** Starts the deadline of the oldest pending call, if jq is running and a call waits. */
  private armDeadline(): void {
    this.cancelDeadline()
    this.cancelDeadline = () => {}
    const p = this.queue[0]
    const child = this.child
    if (p === undefined || child === undefined) return
    const timeoutMs = this.callTimeoutMs + (p.lines.length - p.next) * PER_RECORD_TIMEOUT_MS
    this.cancelDeadline = this.clock.after(timeoutMs, () => this.onTimeout(child, p, timeoutMs))
  }

  /**
   * jq has not answered the oldest call in time: something in it keeps jq busy forever. That call is
   * rejected (not re-run: its record would hang the next jq too); jq is killed, and the calls after
   * it go to a new jq, not counting this as one of their deaths.
   */
  private onTimeout(child: ChildProcessWithoutNullStreams, p: Pending, timeoutMs: number): void {
    if (this.child !== child || this.queue[0] !== p) return
    this.queue.shift()
    this.child = undefined
    child.kill('SIGKILL')
    const stderr = this.stderr.trim()
    p.reject(new JqTimeoutError(
      `jq gave no answer for record ${p.slots[p.next]! + 1} of the call within ${Math.round(timeoutMs)} ms; it was killed${stderr ? `: ${stderr}` : ''}`,
      timeoutMs,
    ))
    if (this.queue.length > 0 && !this.closed) this.start()
    else if (this.closed) for (const q of this.queue.splice(0)) q.reject(new FormatError(FormatErrorCode.JQ_UNAVAILABLE, 'the jq partitioner was closed while partitioning'))
  }

  private send(p: Pending): void {
    const parts: Buffer[] = []
    for (let i = p.next; i < p.lines.length; i++) parts.push(p.lines[i]!, NL)
    // One write per call; jq answers as it reads, and the answers are read as they come.
    this.child!.stdin.write(Buffer.concat(parts))
  }

  private start(): void {
    this.tail = ''
    this.stderr = ''
    const child = this.spawnJq(this.jqPath, ['-c', '--unbuffered', '-R', this.program])
    this.child = child
    // A jq killed for a timeout may still flush a few lines: they are not the new jq's answers.
    child.stdout.setEncoding('utf8').on('data', (s: string) => { if (this.child === child) this.onData(s) })
    child.stderr.setEncoding('utf8').on('data', (s: string) => { if (this.child === child) this.stderr = (this.stderr + s).slice(-2000) })
    // A write to a jq that just died fails with EPIPE; its 'close' handles the calls.
    child.stdin.on('error', () => {})
    let gone = false
    const died = (why: string) => {
      if (gone) return
      gone = true
      this.onDeath(child, why)
    }
    child.on('error', (err) => died(err.message))
    child.on('close', (code, signal) => died(signal ? `killed by ${signal}` : `exited with code ${code}`))
    for (const p of this.queue) this.send(p)
    this.armDeadline()
  }

  private onData(s: string): void {
    const text = this.tail === '' ? s : this.tail + s
    let from = 0
    let nl: number
    while ((nl = text.indexOf('\n', from)) >= 0) {
      this.onLine(text.slice(from, nl))
      from = nl + 1
    }
    this.tail = text.slice(from)
  }

  private onLine(line: string): void {
    const p = this.queue[0]
    if (p === undefined) return
    const answer = parseJqAnswer(this.keyNames, line)
    p.answers[p.slots[p.next]!] = answer
    p.next++
    if (p.next === p.lines.length) {
      this.queue.shift()
      this.armDeadline()
      p.resolve(p.answers as PartitionAnswer[])
    }
  }

  private onDeath(child: ChildProcessWithoutNullStreams, why: string): void {
    if (this.child !== child) return
    this.child = undefined
    this.cancelDeadline()
    this.cancelDeadline = () => {}
    const stderr = this.stderr.trim()
    const pending = this.queue.splice(0)
    const survivors: Pending[] = []
    for (const p of pending) {
      p.deaths++
      if (this.closed || p.deaths >= MAX_DEATHS_PER_CALL) {
        p.reject(new FormatError(FormatErrorCode.JQ_UNAVAILABLE, `jq ${why} while partitioning${stderr ? `: ${stderr}` : ''}`))
      } else {
        survivors.push(p)
      }
    }
    // What was not answered goes to a new jq; without pending calls, the next call starts one.
    this.queue.push(...survivors)
    if (survivors.length > 0) this.start()
  }
}
