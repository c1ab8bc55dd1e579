/**
 * StartStreamEncryption / StopStreamEncryption: the KeyId is validated and reported back; records
 * appended while encryption is on are sealed by the relay's local key (relay/encryption.ts).
 */
import type { StreamState } from '../../streams.js'
import { resolveStream, type ApiContext } from '../context.js'
import { encryptionTypeNotKms, invalidKeyId } from '../errors.js'
import { StreamARN, StreamId, StreamName, validate } from '../validate.js'

const UUID = '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}'
const ALIAS = 'alias/[a-zA-Z0-9/_-]+'
const MRK = 'mrk-[0-9a-f]{32}'
/** The four ways KMS lets a key be named: key id, key ARN, alias name, alias ARN (multi-Region keys included). */
const KEY_ID = new RegExp(`^(?:${UUID}|${MRK}|${ALIAS}|arn:aws[a-z-]*:kms:[a-z0-9-]+:\\d{12}:(?:key/(?:${UUID}|${MRK})|${ALIAS}))$`)

function checkKeyId(keyId: string): void {
  if (!KEY_ID.test(keyId)) throw invalidKeyId(keyId)
}

interface EncryptionRequest { StreamName?: string; StreamARN?: string; EncryptionType: 'NONE' | 'KMS'; KeyId: string }

/** The request of Start/StopStreamEncryption, validated, with the stream it names. */
function request(body: unknown, action: string, ctx: ApiContext): { req: EncryptionRequest; state: StreamState } {
  const req = validate<EncryptionRequest>(body, {
    StreamName,
    EncryptionType: { type: 'string', required: true, enum: ['NONE', 'KMS'] },
    KeyId: { type: 'string', required: true, min: 1, max: 2048 },
    StreamARN, StreamId,
  }, 'declared')
  const state = resolveStream(req, ctx)
  if (req.EncryptionType !== 'KMS') throw encryptionTypeNotKms(req.EncryptionType, action)
  checkKeyId(req.KeyId)
  return { req, state }
}

export async function startStreamEncryption(body: unknown, ctx: ApiContext) {
  const { req, state } = request(body, 'StartStreamEncryption', ctx)
  // The key exists before the first sealed record does.
  ctx.cipher.ensureKey()
  await ctx.settings.update(state.meta.id, { encryptionType: 'KMS', keyId: req.KeyId })
  return {}
}

export async function stopStreamEncryption(body: unknown, ctx: ApiContext) {
  const { req, state } = request(body, 'StopStreamEncryption', ctx)
  const current = ctx.settings.get(state.meta.id)
  if (current.encryptionType === 'KMS' && current.keyId !== req.KeyId) throw ctx.errors.keyIdMismatch(req.KeyId, current.keyId, state.meta.name)
  await ctx.settings.update(state.meta.id, { encryptionType: 'NONE', keyId: null })
  return {}
}
