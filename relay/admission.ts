/**
 * MQTT connections not yet authenticated ("pending"): counted in all and per client address, so
 * that half-sent CONNECTs cannot pile up without bound before anyone is known. A connection is
 * admitted or refused at accept; it leaves the count once it authenticates or closes.
 */

export interface AdmissionLimits {
  maxPending: number
  maxPendingPerAddress: number
}

export type Admission = { ok: true; settle(): void } | { ok: false; reason: 'pending-total' | 'pending-per-address' }

export class PendingConnections {
  private readonly limits: AdmissionLimits
  private total = 0
  private readonly byAddress = new Map<string, number>()

  constructor(limits: AdmissionLimits) {
    this.limits = limits
  }

  /** Admits a new connection from `address`; `settle` (idempotent) takes it out of the count. */
  admit(address: string): Admission {
    const here = this.byAddress.get(address) ?? 0
    if (here >= this.limits.maxPendingPerAddress) return { ok: false, reason: 'pending-per-address' }
    if (this.total >= this.limits.maxPending) return { ok: false, reason: 'pending-total' }
    this.total++
    this.byAddress.set(address, here + 1)
    let settled = false
    return {
      ok: true,
      settle: () => {
        if (settled) return
        settled = true
        this.total--
        const left = (this.byAddress.get(address) ?? 1) - 1
        if (left > 0) this.byAddress.set(address, left)
        else this.byAddress.delete(address)
      },
    }
  }

  pending(): number {
    return this.total
  }
}
