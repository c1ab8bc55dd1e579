/**
 * Tags: AddTagsToStream, ListTagsForStream, RemoveTagsFromStream, and the newer resource-based
 * TagResource, UntagResource, ListTagsForResource (stream and consumer ARNs; a consumer's tags may
 * also come with RegisterStreamConsumer). Limits and wording as AWS's: at most
 * 50 tags per stream, keys 1–128 and values 0–256 characters of Unicode letters, digits, white space
 * and `_ . : / = + - @`.
 */
import type { ConsumerMeta } from '../../meta/types.js'
import type { StreamState } from '../../streams.js'
import { THROUGHPUT_TAG } from '../../throughput.js'
import { resolveStream, type ApiContext } from '../context.js'
import { illegalTagCharacters, invalidTagCharacters, TagAttempt, tagsPerConsumerExceeded, throughputTagValue, type TagChange } from '../errors.js'
import { required, ResourceARN, StreamARN, StreamId, StreamName, TagKey, TagKeyList, TagMap, validate } from '../validate.js'

export const MAX_TAGS_PER_STREAM = 50

const ALLOWED = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u

/** AWS's two checks: `%` has its own refusal, naming `what` the change was trying to do (TagAttempt). */
export function checkTagCharacters(texts: string[], what: string): void {
  if (texts.every((t) => ALLOWED.test(t))) return
  if (texts.some((t) => t.includes('%'))) throw illegalTagCharacters(what)
  throw invalidTagCharacters()
}

function checkCharacters(texts: string[], change: TagChange, state: StreamState, ctx: ApiContext): void {
  checkTagCharacters(texts, ctx.errors.tagChangeOnStream(change, state.meta.name))
}

async function addTags(state: StreamState, tags: Record<string, string>, ctx: ApiContext): Promise<void> {
  checkCharacters([...Object.keys(tags), ...Object.values(tags)], 'add', state, ctx)
  const limits = tags[THROUGHPUT_TAG]
  if (limits !== undefined && limits !== 'on' && limits !== 'off') throw throughputTagValue(THROUGHPUT_TAG, limits)
  const keys = new Set([...Object.keys(state.tags), ...Object.keys(tags)])
  if (keys.size > MAX_TAGS_PER_STREAM) throw ctx.errors.tagsPerStreamExceeded(state.meta.name, MAX_TAGS_PER_STREAM)
  await ctx.streams.addTags(state, tags)
}

async function removeTags(state: StreamState, keys: string[], ctx: ApiContext): Promise<void> {
  checkCharacters(keys, 'remove', state, ctx)
  await ctx.streams.removeTags(state, keys)
}

/** What a resource ARN names: a stream, or one of its registered consumers. */
function resource(arn: string, ctx: ApiContext): { stream: StreamState } | { consumer: ConsumerMeta } {
  if (/:stream\/[^/]+\/consumer\//.test(arn)) {
    const found = ctx.consumers.byArn(arn)
    if (!found) throw ctx.errors.consumerNotFound(arn)
    return { consumer: found.consumer }
  }
  return { stream: resolveStream({ StreamARN: arn }, ctx) }
}

export async function addTagsToStream(body: unknown, ctx: ApiContext) {
  const req = validate<{ StreamName?: string; StreamARN?: string; Tags: Record<string, string> }>(body, {
    // kinesalite's validations/addTagsToStream.js: Tags, StreamName.
    Tags: required(TagMap), StreamName, StreamARN, StreamId,
  }, 'declared')
  await addTags(resolveStream(req, ctx), req.Tags, ctx)
  return {}
}

export async function removeTagsFromStream(body: unknown, ctx: ApiContext) {
  const req = validate<{ StreamName?: string; StreamARN?: string; TagKeys: string[] }>(body, {
    // kinesalite's validations/removeTagsFromStream.js: TagKeys, StreamName.
    TagKeys: required(TagKeyList), StreamName, StreamARN, StreamId,
  }, 'declared')
  await removeTags(resolveStream(req, ctx), req.TagKeys, ctx)
  return {}
}

export async function listTagsForStream(body: unknown, ctx: ApiContext) {
  const req = validate<{ StreamName?: string; StreamARN?: string; ExclusiveStartTagKey?: string; Limit?: number }>(body, {
    // kinesalite's validations/listTagsForStream.js: Limit, ExclusiveStartTagKey, StreamName.
    Limit: { type: 'integer', min: 1, max: 50 }, ExclusiveStartTagKey: TagKey, StreamName, StreamARN, StreamId,
  }, 'declared')
  const state = resolveStream(req, ctx)
  const keys = Object.keys(state.tags).sort().filter((k) => req.ExclusiveStartTagKey === undefined || k > req.ExclusiveStartTagKey)
  const limit = req.Limit ?? 50
  return { Tags: keys.slice(0, limit).map((k) => ({ Key: k, Value: state.tags[k]! })), HasMoreTags: keys.length > limit }
}

export async function tagResource(body: unknown, ctx: ApiContext) {
  const req = validate<{ ResourceARN: string; Tags: Record<string, string> }>(body, { Tags: required(TagMap), ResourceARN, StreamId }, 'declared')
  const target = resource(req.ResourceARN, ctx)
  if ('stream' in target) {
    await addTags(target.stream, req.Tags, ctx)
    return {}
  }
  const consumers = ctx.consumers
  checkTagCharacters(Object.entries(req.Tags).flat(), TagAttempt.onConsumer('add', target.consumer.arn))
  const existing = await consumers.tags(target.consumer)
  if (new Set([...Object.keys(existing), ...Object.keys(req.Tags)]).size > MAX_TAGS_PER_STREAM) {
    throw tagsPerConsumerExceeded(target.consumer.arn, MAX_TAGS_PER_STREAM)
  }
  await consumers.addTags(target.consumer, req.Tags)
  return {}
}

export async function untagResource(body: unknown, ctx: ApiContext) {
  const req = validate<{ ResourceARN: string; TagKeys: string[] }>(body, { TagKeys: required(TagKeyList), ResourceARN, StreamId }, 'declared')
  const target = resource(req.ResourceARN, ctx)
  if ('stream' in target) await removeTags(target.stream, req.TagKeys, ctx)
  else {
    checkTagCharacters(req.TagKeys, TagAttempt.onConsumer('remove', target.consumer.arn))
    await ctx.consumers.removeTags(target.consumer, req.TagKeys)
  }
  return {}
}

export async function listTagsForResource(body: unknown, ctx: ApiContext) {
  const req = validate<{ ResourceARN: string }>(body, { ResourceARN, StreamId }, 'declared')
  const target = resource(req.ResourceARN, ctx)
  const tags = 'stream' in target ? target.stream.tags : await ctx.consumers.tags(target.consumer)
  return { Tags: Object.keys(tags).sort().map((k) => ({ Key: k, Value: tags[k]! })) }
}
