/**
 * HLS playlists as text (RFC 8216): the master playlist naming the one video rendition, and the
 * media playlist of a timeline — fMP4 segments (version 7) with an EXT-X-MAP per capture session, or
 * MPEG-TS segments (version 3). URLs are relative to the master playlist's, as AWS's are, and carry
 * the session token.
 */
import { fragmentNumberOf } from '../catalog.js'
import type { HlsSession } from './session-token.js'
import type { Playlist } from './timeline.js'

export const HLS_PATHS = {
  master: 'getHLSMasterPlaylist.m3u8',
  media: 'getHLSMediaPlaylist.m3u8',
  init: 'getMP4InitFragment.mp4',
  fragment: 'getMP4MediaFragment.mp4',
  ts: 'getTSFragment.ts',
} as const

/** The HLS path prefix on the relay (as AWS's `/hls/v1/`). */
export const HLS_PREFIX = '/hls/v1/'

const url = (path: string, token: string, fragmentId?: number) =>
  `${path}?SessionToken=${token}${fragmentId === undefined ? '' : `&FragmentNumber=${fragmentNumberOf(fragmentId)}`}`

export function masterPlaylist(token: string, p: Playlist): string {
  const first = p.entries[0]!
  // Peak bits per second over the listed fragments (BANDWIDTH is the peak, RFC 8216 §4.3.4.2).
  const bandwidth = Math.max(1, ...p.entries.map((e) => Math.ceil((e.bytes * 8 * 1000) / Math.max(1, e.durationMs))))
  return [
    '#EXTM3U',
    '#EXT-X-VERSION:7',
    '#EXT-X-INDEPENDENT-SEGMENTS',
    `#EXT-X-STREAM-INF:BANDWIDTH=${bandwidth},CODECS="${first.codec}",RESOLUTION=${first.width}x${first.height}`,
    url(HLS_PATHS.media, token),
    '',
  ].join('\n')
}

export function mediaPlaylist(s: HlsSession, token: string, p: Playlist): string {
  const mp4 = s.container === 'FRAGMENTED_MP4'
  const target = Math.max(1, ...p.entries.map((e) => Math.ceil(e.durationMs / 1000)))
  const lines = [
    '#EXTM3U',
    `#EXT-X-VERSION:${mp4 ? 7 : 3}`,
    `#EXT-X-TARGETDURATION:${target}`,
    `#EXT-X-MEDIA-SEQUENCE:${p.mediaSequence}`,
    `#EXT-X-DISCONTINUITY-SEQUENCE:${p.discontinuitySequence}`,
  ]
  if (s.mode === 'ON_DEMAND') lines.push('#EXT-X-PLAYLIST-TYPE:VOD')
  lines.push('#EXT-X-INDEPENDENT-SEGMENTS')
  // A reload may wait for the next segment (_HLS_msn), so players need not poll.
  if (!p.ended) lines.push('#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES')
  let init: number | null = null
  for (const e of p.entries) {
    if (e.disc) lines.push('#EXT-X-DISCONTINUITY')
    if (mp4 && e.initId !== init) {
      lines.push(`#EXT-X-MAP:URI="${url(HLS_PATHS.init, token, e.initId)}"`)
      init = e.initId
    }
    if (s.displayTimestamps) lines.push(`#EXT-X-PROGRAM-DATE-TIME:${new Date(Math.round(e.timeMs)).toISOString()}`)
    lines.push(`#EXTINF:${(e.durationMs / 1000).toFixed(3)},`)
    lines.push(url(mp4 ? HLS_PATHS.fragment : HLS_PATHS.ts, token, e.id))
  }
  if (p.ended) lines.push('#EXT-X-ENDLIST')
  lines.push('')
  return lines.join('\n')
}
