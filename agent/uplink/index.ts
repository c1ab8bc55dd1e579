/** The uplink: what the agent and the tests use. */
export { Uplink, type UplinkDeps, type UplinkStats, type LinkState, type UplinkAttachment } from './uplink.js'
export { relayTransport, type Transport, type UplinkClient, type ConnectOptions } from './transport.js'
export { Backoff } from './backoff.js'
export { DrainBudget } from './drain-budget.js'
