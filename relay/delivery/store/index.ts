/** Object stores: where the files and S3 sinks write (and the error target of object sinks). */
import type { ObjectStore, ObjectTarget } from '../types.js'
import { FileObjectStore } from './files.js'
import { S3ObjectStore } from './s3.js'

export { FileObjectStore } from './files.js'
export { S3ObjectStore, type S3StoreOptions } from './s3.js'
export { MemoryObjectStore } from './memory.js'
export { keyProblem } from './key.js'

/** The store of a target; one per delivery stream, closed with it. */
export function openObjectStore(target: ObjectTarget): ObjectStore {
  switch (target.type) {
    case 'files': return new FileObjectStore(target.directory)
    case 's3': return new S3ObjectStore(target)
  }
}
