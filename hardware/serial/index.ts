export { SerialLink, openError, type SerialLinkOptions, type LinkState, type LinkStats, type LossReason } from './link.js'
export { systemBinding } from './binding.js'
export type { SerialBinding, SerialPortBinding, SerialOpenOptions } from './types.js'
