/**
 * The live MQTT sessions of each device and the credential each proved, so that a change of the
 * device's credentials closes exactly the sessions it revoked, at once: a removal, a rotation without
 * grace, the end of a rotation's grace window, or the registration of an id an anonymous client was
 * using. The caller of the change (the admin API) waits until those sessions are closed.
 */
import type { Clock } from '../hardware/index.js'
import type { DeviceCertificates } from './device-certs.js'
import type { Devices, SecretProof } from './devices.js'

/** What a session proved at CONNECT. */
export type Credential = { kind: 'secret'; proof: SecretProof } | { kind: 'certificate'; serial: string; untilMs: number } | { kind: 'anonymous' }

/** A live session: an aedes client, as far as this module needs one. */
export interface Session { close(): void }

/** The longest timer node's setTimeout keeps (a longer one fires after 1 ms). */
const MAX_TIMER_MS = 2 ** 31 - 1

interface Entry { credential: Credential; cancel: () => void }

export interface SessionsOptions {
  devices: Devices
  /** Certificate sessions hold while their certificate does; a revocation is a change of its device. */
  certificates?: Pick<DeviceCertificates, 'holds' | 'onChange'>
  clock: Clock
  log: (event: string, fields: Record<string, unknown>) => void
}

export class DeviceSessions {
  private readonly o: SessionsOptions
  private readonly byDevice = new Map<string, Map<Session, Entry>>()
  /** Bumped by every credential change of a device, so an authentication that overlapped one is checked again. */
  private readonly changes = new Map<string, number>()

  constructor(options: SessionsOptions) {
    this.o = options
    options.devices.onChange((id) => this.revalidate(id))
    options.certificates?.onChange((id) => this.revalidate(id))
  }

  /** Taken before a credential is checked; hand it to `admit`. */
  stamp(device: string): number {
    return this.changes.get(device) ?? 0
  }

  /**
   * Records a session that proved `credential` (checked when `stamp` was taken). If the device's
   * credentials changed meanwhile the credential is checked again; false when it no longer holds.
   */
  async admit(device: string, session: Session, credential: Credential, stamp: number): Promise<boolean> {
    let sessions = this.byDevice.get(device)
    if (!sessions) this.byDevice.set(device, sessions = new Map())
    // Recorded first: a change from here on finds it.
    sessions.set(session, { credential, cancel: () => {} })
    if (stamp !== this.stamp(device) && !(await this.holds(device, session))) {
      this.forget(device, session)
      return false
    }
    this.armExpiry(device, session, credential)
    return true
  }

  forget(device: string, session: Session): void {
    const sessions = this.byDevice.get(device)
    const entry = sessions?.get(session)
    if (!sessions || !entry) return
    entry.cancel()
    sessions.delete(session)
    if (!sessions.size) this.byDevice.delete(device)
  }

  /** Checks every live session of `device` against its credentials now; closes those no longer valid. */
  async revalidate(device: string): Promise<void> {
    this.changes.set(device, this.stamp(device) + 1)
    const sessions = this.byDevice.get(device)
    if (!sessions) return
    await Promise.all([...sessions.keys()].map(async (session) => {
      if (!(await this.holds(device, session))) this.close(device, session, 'credentials_changed')
    }))
  }

  /** Whether the session's credential still holds; a proof's end may have moved (a new window). */
  private async holds(device: string, session: Session): Promise<boolean> {
    const entry = this.byDevice.get(device)?.get(session)
    if (!entry) return false
    if (entry.credential.kind === 'anonymous') return !(await this.o.devices.isRegistered(device))
    if (entry.credential.kind === 'certificate') {
      if (entry.credential.untilMs <= this.o.clock.wallMs()) return false
      return (await this.o.certificates?.holds(device, entry.credential.serial)) ?? false
    }
    const proof = await this.o.devices.check(entry.credential.proof)
    if (!proof) return false
    entry.credential = { kind: 'secret', proof }
    this.armExpiry(device, session, entry.credential)
    return true
  }

  private armExpiry(device: string, session: Session, credential: Credential): void {
    const entry = this.byDevice.get(device)?.get(session)
    if (!entry) return
    entry.cancel()
    entry.cancel = () => {}
    // A secret in a rotation's grace window ends with the window; a certificate at its notAfter.
    const untilMs = credential.kind === 'secret' ? credential.proof.untilMs : credential.kind === 'certificate' ? credential.untilMs : null
    if (untilMs === null) return
    // setTimeout takes at most 2^31-1 ms (a longer one fires after 1 ms: the system clock then re-arms
    // every millisecond, with a warning each time): wake up at that at most, and check again.
    const left = Math.min(MAX_TIMER_MS, Math.max(0, untilMs - this.o.clock.wallMs()))
    entry.cancel = this.o.clock.after(left, () => {
      void this.holds(device, session).then((ok) => {
        if (!ok) this.close(device, session, credential.kind === 'certificate' ? 'certificate_expired' : 'grace_ended')
        else if (credential.kind === 'certificate') this.armExpiry(device, session, credential) // holds re-arms a secret's itself
      })
    })
  }

  private close(device: string, session: Session, reason: string): void {
    this.forget(device, session)
    this.o.log('session_revoked', { device, reason })
    session.close()
  }

  /** Closes every live session of `device` (the relay cannot serve it now: it reconnects and retries). */
  closeAll(device: string): void {
    for (const session of [...(this.byDevice.get(device)?.keys() ?? [])]) session.close()
  }

  /** Live sessions of `device` (for tests and metrics). */
  count(device: string): number {
    return this.byDevice.get(device)?.size ?? 0
  }
}
