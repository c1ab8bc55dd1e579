/**
 * Class: SerializationException bodies. A value of the wrong JSON type is refused before any
 * validation, as `{"__type":"SerializationException","Message":"…"}` — `Message` with a capital M,
 * where every other exception says `message`.
 *
 * Where the expectations come from:
 * - the members of each action and their types: the AWS SDK's service model, as
 *   @aws-sdk/client-kinesis ships it (its `…Input$` schemas), read here at run time, so a member
 *   AWS adds is a row at once;
 * - the wording for each wrong type, and the capital M: AWS's answers as kinesalite records them
 *   (https://github.com/mhart/kinesalite, validations/index.js and test/*.js: "class
 *   java.lang.Boolean can not be converted to an String", "Start of list found where not
 *   expected", "Expected null", the Blob base64 messages);
 * - the front door's bare {"__type":"SerializationException"} for a body that is not JSON:
 *   kinesalite's test/connection.js ("should return SerializationException if non-JSON body").
 *
 * AWS's CBOR wording is not recorded anywhere we could read: the rows run over CBOR with the JSON
 * wording (docs/compatibility.md).
 */
import * as model from '@aws-sdk/client-kinesis'
import { ACTIONS } from '../../../relay/kinesis/actions/index.js'
import type { Row } from './rows.js'

const CLASS = 'serialization'
const KINESALITE = 'AWS answers recorded by kinesalite: https://github.com/mhart/kinesalite/blob/master/test/helpers.js (assertType), validations/index.js'
const MODEL = `member types from the AWS SDK model (@aws-sdk/client-kinesis schemas); wording: ${KINESALITE}`

const NUMBER = 'class com.amazon.coral.value.json.numbers.TruncatingBigNumber'
const BOOLEAN = 'class java.lang.Boolean'
const STRING = 'class java.lang.String'
const LIST_HERE = 'Start of list found where not expected'
const MAP_HERE = 'Start of structure or map found where not expected.'

/** The SDK schema's kinds of member, as far as a wrong JSON type tells them apart. */
type Kind = 'string' | 'integer' | 'boolean' | 'timestamp' | 'blob' | 'list' | 'map' | 'structure'

/** @smithy/core's schema codes: 0 string, 1 number, 2 boolean, 4 timestamp, 21 blob, 64 list of, 128 map of; a function is a list (1) or structure (3) schema. */
function kindOf(type: unknown): Kind | null {
  if (typeof type === 'function') {
    const schema = (type as () => unknown[])()
    return schema[0] === 1 ? 'list' : schema[0] === 3 ? 'structure' : schema[0] === 2 ? 'map' : null
  }
  if (type === 0) return 'string'
  if (type === 1) return 'integer'
  if (type === 2) return 'boolean'
  if (type === 4) return 'timestamp'
  if (type === 21) return 'blob'
  if (typeof type === 'number' && type & 64) return 'list'
  if (typeof type === 'number' && type & 128) return 'map'
  return null
}

const NUMBERS = [23, -2147483648, 2147483648, 34.56]

/**
 * Each wrong JSON value for a kind of member, with the message AWS answers it with: the values and
 * answers kinesalite's test/helpers.js `assertType` records for each type (timestamps: its
 * validations/index.js). AWS takes a number with a fraction for a Boolean ("for some reason,
 * doubles are fine"): not a row.
 */
function wrongValues(kind: Kind): [unknown, string][] {
  switch (kind) {
    case 'string': return [[true, `${BOOLEAN} can not be converted to an String`], ...NUMBERS.map((n): [unknown, string] => [n, `${NUMBER} can not be converted to an String`]), [[], LIST_HERE], [{}, MAP_HERE]]
    case 'integer': return [['23', `${STRING} can not be converted to an Integer`], [true, `${BOOLEAN} can not be converted to an Integer`], [[], LIST_HERE], [{}, MAP_HERE]]
    case 'boolean': return [['23', "'23' can not be converted to an Boolean"], ...NUMBERS.slice(0, 3).map((n): [unknown, string] => [n, `${NUMBER} can not be converted to an Boolean`]), [[], LIST_HERE], [{}, MAP_HERE]]
    case 'timestamp': return [[true, `${BOOLEAN} can not be converted to milliseconds since epoch`], ['23', `${STRING} can not be converted to milliseconds since epoch`], [[], LIST_HERE], [{}, MAP_HERE]]
    case 'blob': return [
      [true, `${BOOLEAN} can not be converted to a Blob`], ...NUMBERS.map((n): [unknown, string] => [n, `${NUMBER} can not be converted to a Blob`]), [[], LIST_HERE], [{}, MAP_HERE],
      ['23456', "'23456' can not be converted to a Blob: Base64 encoded length is expected a multiple of 4 bytes but found: 5"],
      ['=+/=', "'=+/=' can not be converted to a Blob: Invalid Base64 character: '='"],
      ['+/+=', "'+/+=' can not be converted to a Blob: Invalid last non-pad Base64 character dectected"],
    ]
    case 'list': return [...['23', true, ...NUMBERS].map((v): [unknown, string] => [v, 'Expected list or null']), [{}, MAP_HERE]]
    case 'map': return [...['23', true, ...NUMBERS].map((v): [unknown, string] => [v, 'Expected map or null']), [[], LIST_HERE]]
    case 'structure': return [...['23', true, ...NUMBERS].map((v): [unknown, string] => [v, 'Expected null']), [[], LIST_HERE]]
  }
}

type Schema = unknown[]
const schemaOf = (type: unknown): Schema => (type as () => Schema)()

/**
 * Every wrong value of a member, placed in a request body by `place`, with AWS's message; then the
 * same for the members of a structure, the member of a list and the values of a map, one level down.
 */
function* wrongs(type: unknown, place: (v: unknown) => unknown, path: string, depth: number): Generator<[string, unknown, unknown, string, Kind]> {
  const kind = kindOf(type)
  if (!kind) throw new Error(`${path}: a schema type the table does not know: ${String(type)}`)
  for (const [value, message] of wrongValues(kind)) yield [path, value, place(value), message, kind]
  if (depth >= 2) return
  if (kind === 'structure') {
    const [, , , , members, types] = schemaOf(type) as [number, string, string, number, string[], unknown[]]
    for (const [i, member] of members.entries()) yield* wrongs(types[i], (v) => place({ [member]: v }), `${path}.${member}`, depth + 1)
  }
  if (kind === 'list') yield* wrongs(typeof type === 'function' ? schemaOf(type)[4] : (type as number) & ~64, (v) => place([v]), `${path}[0]`, depth + 1)
  if (kind === 'map') yield* wrongs(typeof type === 'function' ? schemaOf(type)[5] : (type as number) & ~128, (v) => place({ key: v }), `${path}.key`, depth + 1)
}

/** One row per member of every action the relay serves (and per member of its structures, lists and maps), per wrong JSON type. */
function generated(): Row[] {
  const rows: Row[] = []
  for (const action of Object.keys(ACTIONS).sort()) {
    const schema = (model as Record<string, unknown>)[`${action}Input$`] as [number, string, string, number, string[], unknown[]] | undefined
    if (!schema) throw new Error(`the SDK model has no input for ${action}`)
    const [, , , , members, types] = schema
    for (const [i, member] of members.entries()) {
      for (const [path, value, body, message, kind] of wrongs(types[i], (v) => ({ [member]: v }), member, 0)) {
        rows.push({
          class: CLASS,
          name: `${action} with ${path} (${kind}) as ${JSON.stringify(value)} is a SerializationException with Message`,
          request: { action, body },
          expect: { status: 400, body: { __type: 'SerializationException', Message: message } },
          source: MODEL,
        })
      }
    }
  }
  return rows
}

const blob = (data: string, message: string): Row => ({
  class: CLASS,
  name: `PutRecord with Data ${JSON.stringify(data)} is a SerializationException naming the base64 problem`,
  request: { action: 'PutRecord', body: (f) => ({ StreamName: f.stream, PartitionKey: 'k', Data: data }) },
  expect: { status: 400, body: { __type: 'SerializationException', Message: `'${data}' can not be converted to a Blob: ${message}` } },
  source: `${KINESALITE}; test/putRecord.js`,
})

/** Hand-written rows: members inside structures, lists and maps, and base64 that does not decode. */
const written: Row[] = [
  blob('abc', 'Base64 encoded length is expected a multiple of 4 bytes but found: 3'),
  blob('abcde', 'Base64 encoded length is expected a multiple of 4 bytes but found: 5'),
  blob('ab!d', "Invalid Base64 character: '!'"),
  blob('ab=d', "Invalid Base64 character: '='"),
  blob('aGk_', "Invalid Base64 character: '_'"),
  blob('YQ==YQ==', "Invalid Base64 character: '='"),
  {
    class: CLASS,
    name: 'a PutRecords entry that is a string is a SerializationException ("Expected null")',
    request: { action: 'PutRecords', body: (f) => ({ StreamName: f.stream, Records: ['x'] }) },
    expect: { status: 400, body: { __type: 'SerializationException', Message: 'Expected null' } },
    source: KINESALITE,
  },
  {
    class: CLASS,
    name: "a PutRecords entry's PartitionKey as a number is a SerializationException",
    request: { action: 'PutRecords', body: (f) => ({ StreamName: f.stream, Records: [{ PartitionKey: 5, Data: 'YQ==' }] }) },
    expect: { status: 400, body: { __type: 'SerializationException', Message: `${NUMBER} can not be converted to an String` } },
    source: KINESALITE,
  },
  {
    class: CLASS,
    name: "ListShards' ShardFilter.Timestamp as a string is a SerializationException",
    request: { action: 'ListShards', body: (f) => ({ StreamName: f.stream, ShardFilter: { Type: 'AT_TIMESTAMP', Timestamp: 'now' } }) },
    expect: { status: 400, body: { __type: 'SerializationException', Message: `${STRING} can not be converted to milliseconds since epoch` } },
    source: KINESALITE,
  },
  {
    class: CLASS,
    name: "SubscribeToShard's StartingPosition.Type as a list is a SerializationException",
    request: { action: 'SubscribeToShard', body: { ConsumerARN: 'arn', ShardId: '0', StartingPosition: { Type: [] } } },
    expect: { status: 400, body: { __type: 'SerializationException', Message: LIST_HERE } },
    source: KINESALITE,
  },
  {
    class: CLASS,
    name: "AddTagsToStream's tag value as a number is a SerializationException",
    request: { action: 'AddTagsToStream', body: (f) => ({ StreamName: f.stream, Tags: { a: 1 } }) },
    expect: { status: 400, body: { __type: 'SerializationException', Message: `${NUMBER} can not be converted to an String` } },
    source: KINESALITE,
  },
  {
    class: CLASS,
    name: 'a request body that is a JSON array is a SerializationException',
    request: { action: 'ListStreams', body: [] },
    expect: { status: 400, body: { __type: 'SerializationException', Message: LIST_HERE } },
    source: KINESALITE,
  },
]

export const rows: Row[] = [...generated(), ...written]
