/**
 * Base64 decoding of many ranges of one buffer (PutRecords' Data read in place from the request
 * body), on both implementations: what they decode is Node's own decoding of canonical base64, byte
 * for byte; what is not canonical (a length not a multiple of 4, a byte outside the alphabet, '='
 * anywhere but the end, stray bits in the last digit, no room in the output) is refused by naming
 * the first bad range; and both implementations give the same answer on every input.
 */
import t from 'tap'
import { randomBytes, randomInt } from 'node:crypto'
import * as js from '../../hardware/native/fallback.js'
import { implementations } from '../helpers/codecs.js'

/** A body with the given base64 texts between quotes, and the ranges of the texts in it. */
function bodyOf(texts: string[]): { src: Buffer; ranges: Uint32Array } {
  const ranges = new Uint32Array(texts.length * 2)
  let body = '{"Records":['
  texts.forEach((text, i) => {
    body += `${i ? ',' : ''}{"Data":"`
    ranges[2 * i] = body.length
    body += text
    ranges[2 * i + 1] = body.length
    body += '"}'
  })
  return { src: Buffer.from(body + ']}', 'latin1'), ranges }
}

/** Canonical base64 is what Node writes; a text is canonical when decoding and encoding again gives it back. */
const canonical = (text: string) => text.length % 4 === 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(text) && Buffer.from(text, 'base64').toString('base64') === text

/** One character changed, added or removed, or a pad moved: mostly not canonical any more. */
function mutate(text: string): string {
  const at = randomInt(0, text.length + 1)
  const pick = ['=', '-', '_', ' ', '\n', 'A', '/', '\u00ff', '"'][randomInt(0, 9)]!
  switch (randomInt(0, 4)) {
    case 0: return text.slice(0, at) + pick + text.slice(at + 1)
    case 1: return text.slice(0, at) + pick + text.slice(at)
    case 2: return text.slice(0, at) + text.slice(at + 1)
    default: return text.length >= 2 ? text.slice(0, -2) + ['A=', 'B=', 'AB', '=A'][randomInt(0, 4)]! : text
  }
}

for (const [name, make, skip] of implementations) {
  t.test(`${name}: many ranges decode to Node's own decoding of each, one after another`, { skip }, async (t) => {
    const c = make()
    let bodies = 0
    let differences = 0
    for (let round = 0; round < 300; round++) {
      const datas = Array.from({ length: randomInt(1, 60) }, () => randomBytes([0, 1, 2, 3, 100, randomInt(0, 2000)][randomInt(0, 6)]!))
      const { src, ranges } = bodyOf(datas.map((d) => d.toString('base64')))
      const want = Buffer.concat(datas)
      const out = Buffer.alloc(want.length)
      const wrote = c.base64DecodeRanges(src, ranges, out)
      bodies++
      if (wrote !== want.length || !out.equals(want)) differences++
    }
    t.equal(differences, 0, `${bodies} bodies of 1-60 records of 0-2,000 bytes, no difference`)
  })

  t.test(`${name}: what is not canonical base64 is refused, naming the first bad range`, { skip }, async (t) => {
    const c = make()
    const cases: [string, string[], number][] = [
      ['a length not a multiple of 4', ['QUJD', 'QUJ'], -2],
      ['a byte outside the alphabet', ['QU-D'], -1],
      ['URL-safe digits', ['QUJD', 'Pz8_'], -2],
      ['a pad in the middle', ['QU=D'], -1],
      ['three pads', ['Q==='], -1],
      ['four pads', ['===='], -1],
      ['stray bits under one pad', ['QUJ='], -1],
      ['stray bits under two pads', ['QR=='], -1],
      ['white space', ['QU JD'], -1],
    ]
    for (const [what, texts, want] of cases) {
      const { src, ranges } = bodyOf(texts)
      t.equal(c.base64DecodeRanges(src, ranges, Buffer.alloc(64)), want, what)
    }
    const { src, ranges } = bodyOf(['QUJD', 'QUE='])
    t.equal(c.base64DecodeRanges(src, ranges, Buffer.alloc(5)), 5, 'an output exactly as long as the decoded bytes is enough (padding counted)')
    t.equal(c.base64DecodeRanges(src, ranges, Buffer.alloc(4)), -2, 'a shorter one refuses the range that does not fit, writing nothing past its end')
    t.equal(c.base64DecodeRanges(src, new Uint32Array(0), Buffer.alloc(0)), 0, 'no ranges: nothing written')
    t.throws(() => c.base64DecodeRanges(src, new Uint32Array([0, src.length + 1]), Buffer.alloc(64)), RangeError, 'a range outside the source is a caller\'s error')
  })
}

t.test('both implementations give the same answer on 20,000 mutated bodies, and accept exactly the canonical texts', { skip: implementations[1]![2] }, async (t) => {
  const native = implementations[1]![1]()
  let disagreements = 0
  let wrongVerdicts = 0
  for (let round = 0; round < 20_000; round++) {
    const texts = Array.from({ length: randomInt(1, 4) }, () => {
      const text = randomBytes(randomInt(0, 12)).toString('base64')
      return randomInt(0, 3) ? mutate(text) : text
    })
    const { src, ranges } = bodyOf(texts)
    const a = Buffer.alloc(64)
    const b = Buffer.alloc(64)
    const got = native.base64DecodeRanges(src, ranges, a)
    const ref = js.base64DecodeRanges(src, ranges, b)
    if (got !== ref || (got >= 0 && !a.subarray(0, got).equals(b.subarray(0, ref)))) disagreements++
    const firstBad = texts.findIndex((text) => !canonical(text))
    if (ref !== (firstBad < 0 ? Buffer.concat(texts.map((x) => Buffer.from(x, 'base64'))).length : -firstBad - 1)) wrongVerdicts++
  }
  t.equal(disagreements, 0, 'the addon and the fallback agree on every body')
  t.equal(wrongVerdicts, 0, 'each body is refused at its first text that Node would not write back the same, and only there')
})
