/**
 * GetClip (`POST /getClip`): a progressive MP4 of the fragments in a time range, remuxed without
 * decoding (mp4.ts) and streamed as it is made — the `moov` first, then each fragment's samples read
 * from its file and sent — with AWS's limits: at most 200 fragments and 100 MB. AWS's documentation
 * says a longer range is cut to its first 100 MB / 200 fragments; the relay refuses it instead
 * (InvalidArgumentException naming the limit and what the range holds), so a caller never takes a
 * short clip for the whole.
 */
import type { FragmentRecord } from '../catalog.js'
import type { VideoStore } from '../store.js'
import type { VideoStreams } from '../streams.js'
import { VideoApiError, VideoErrorType, invalidArgument } from '../errors.js'
import { validate } from '../validate.js'
import { Streamed, type Slots } from './answer.js'
import { noFragments } from './hls.js'
import type { MediaReader } from './inits.js'
import { layoutClip, type ClipPart } from './mp4.js'
import { checkRange, origin, SelectorType, StreamARN, StreamName, type Named } from './shapes.js'
import { selectRange } from './timeline.js'

export const MAX_CLIP_FRAGMENTS = 200
export const MAX_CLIP_BYTES = 100 * 1024 * 1024

export interface ClipContext {
  streams: VideoStreams
  store: VideoStore
  reader: MediaReader
  /** Clips being sent at once. */
  clips: Slots
}

interface ClipRequest extends Named {
  ClipFragmentSelector: { FragmentSelectorType: string; TimestampRange: { StartTimestamp: number; EndTimestamp: number } }
}

export async function getClip(body: unknown, ctx: ClipContext): Promise<Streamed> {
  const r = validate<ClipRequest>(body, {
    StreamName, StreamARN,
    ClipFragmentSelector: { type: 'structure', required: true, fields: {
      FragmentSelectorType: { ...SelectorType, required: true },
      TimestampRange: { type: 'structure', required: true, fields: { StartTimestamp: { type: 'timestamp', required: true }, EndTimestamp: { type: 'timestamp', required: true } } },
    } },
  })
  const { StartTimestamp: from, EndTimestamp: to } = r.ClipFragmentSelector.TimestampRange
  checkRange(from, to)
  const stream = ctx.streams.resolve(r.StreamName, r.StreamARN)
  const rows = selectRange(ctx.store, stream.id, origin(r.ClipFragmentSelector.FragmentSelectorType), from, to, MAX_CLIP_FRAGMENTS + 1)
  if (rows.length === 0) throw noFragments()
  if (rows.length > MAX_CLIP_FRAGMENTS) throw invalidArgument(`The requested clip holds more than ${MAX_CLIP_FRAGMENTS} fragments, the most GetClip returns; ask for a shorter TimestampRange.`)
  const bytes = rows.reduce((s, f) => s + f.bytes, 0)
  if (bytes > MAX_CLIP_BYTES) throw invalidArgument(`The requested clip holds ${bytes} bytes of fragments, over the ${MAX_CLIP_BYTES / 1024 / 1024} MB GetClip returns; ask for a shorter TimestampRange.`)
  if (!ctx.clips.take()) throw new VideoApiError(VideoErrorType.ClientLimitExceededException, `The relay is sending ${ctx.clips.max} clips already; try again shortly.`)
  try {
    // The sample tables first (cached per fragment; the bytes are read again as they are sent).
    const parts: ClipPart[] = []
    const kept: FragmentRecord[] = []
    for (const row of rows) {
      const initRow = ctx.reader.initRow(row)
      // A session whose init segment retention has taken cannot be played: its fragments are left out.
      if (!initRow) continue
      const init = await ctx.reader.track(initRow)
      parts.push({ init, samples: await ctx.reader.table(row, init) })
      kept.push(row)
    }
    if (parts.length === 0) throw noFragments()
    const layout = layoutClip(parts)
    const release = once(() => ctx.clips.release())
    return new Streamed('video/mp4', async (sink) => {
      try {
        await sink.write(layout.head)
        let part = -1
        let data: Buffer = Buffer.alloc(0)
        for (const range of layout.ranges) {
          if (range.part !== part) {
            part = range.part
            data = await ctx.reader.read(kept[part]!)
          }
          await sink.write(data.subarray(range.offset, range.offset + range.bytes))
        }
      } finally {
        release()
      }
    }, layout.size)
  } catch (err) {
    ctx.clips.release()
    throw err
  }
}

function once(fn: () => void): () => void {
  let done = false
  return () => { if (!done) { done = true; fn() } }
}
