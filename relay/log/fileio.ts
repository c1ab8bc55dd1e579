/**
 * The native addon's file work on the thread pool (hardware/native/src/fileio.c), for the file
 * store's checkpoints of many segments: `syncfs` makes every file of a file system durable in one
 * call, `writeAt` writes many ranges of one buffer into many files in one job. Null where the addon is
 * not loaded (TRIBUTARY_NATIVE=0, it did not build, or it predates them): the store then writes and
 * fdatasyncs each segment file itself.
 */
import { getSystemErrorName } from 'node:util'
import { loadAddon } from '../../hardware/index.js'

export interface FileIo {
  /** Makes the file system holding the open descriptor `fd` durable; throws an error with the errno's code. */
  syncfs(fd: number): Promise<void>
  /**
   * For each row (fd, position, offset, length) of `table`, `buf`'s bytes [offset, offset + length)
   * written whole at `position` of `fd`; the errno of each row, 0 where it was written.
   */
  writeAt(buf: Buffer, table: Float64Array): Promise<Int32Array>
}

interface AddonFileIo {
  syncfs?: (fd: number) => Promise<number>
  writeAt?: (buf: Buffer, table: Float64Array) => Promise<Int32Array>
}

/** An error for `errno` as Node's fs names one (`code`, negative `errno`, `syscall`). */
export function errnoError(errno: number, syscall: string, what: string): NodeJS.ErrnoException {
  const code = getSystemErrorName(-errno)
  return Object.assign(new Error(`${code}: ${what}`), { code, errno: -errno, syscall })
}

export function loadFileIo(env: NodeJS.ProcessEnv = process.env): FileIo | null {
  if (env.TRIBUTARY_NATIVE === '0') return null
  let addon: AddonFileIo
  try {
    addon = loadAddon() as unknown as AddonFileIo
  } catch {
    return null
  }
  const { syncfs, writeAt } = addon
  if (typeof syncfs !== 'function' || typeof writeAt !== 'function') return null
  return {
    async syncfs(fd) {
      const errno = await syncfs(fd)
      if (errno !== 0) throw errnoError(errno, 'syncfs', "syncfs of the store's file system failed")
    },
    writeAt: (buf, table) => writeAt(buf, table),
  }
}
