/** The operating system's serial binding (serialport's C++ one); tests may pass another. */
import { autoDetect } from '@serialport/bindings-cpp'
import type { SerialBinding } from './types.js'

let binding: SerialBinding | null = null

export function systemBinding(): SerialBinding {
  binding ??= autoDetect() as unknown as SerialBinding
  return binding
}
