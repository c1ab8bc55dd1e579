/**
 * The part of serialport's binding layer the link relies on, with its contracts written down
 * (`@serialport/bindings-interface` ships these types, but its package exports hide them from
 * TypeScript's NodeNext resolution).
 */
export interface SerialOpenOptions {
  path: string
  baudRate: number
  dataBits?: 5 | 6 | 7 | 8
  stopBits?: 1 | 1.5 | 2
  parity?: string
  rtscts?: boolean
  /** flock the device, so a second process is refused. */
  lock?: boolean
}

export interface SerialPortBinding {
  readonly isOpen: boolean
  close(): Promise<void>
  /** Resolves with at least one byte. A pending read rejects with `canceled: true` when the port is closed; any other rejection means the device is gone. */
  read(buffer: Buffer, offset: number, length: number): Promise<{ buffer: Buffer; bytesRead: number }>
  /** Resolves once the bytes are handed to the operating system. */
  write(buffer: Buffer): Promise<void>
  /** Modem status lines; rejects with the errno when the ioctl fails. */
  get(): Promise<{ cts: boolean; dsr: boolean; dcd: boolean }>
}

export interface SerialBinding {
  open(options: SerialOpenOptions): Promise<SerialPortBinding>
}
