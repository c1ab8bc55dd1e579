/** The agent's video side: the cameras' offline buffer and the uplink that sends it. */
export { VideoStore, type CameraBuffer, type CameraBufferStats, type StoredFragment, type VideoDropReason, type VideoStoreOptions } from './store.js'
export { VideoSender, type CameraSendStats, type VideoSenderOptions } from './sender.js'
export { ByteBucket } from './bucket.js'
