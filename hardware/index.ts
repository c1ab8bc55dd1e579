export {
  codec, loadCodec, loadAddon, u128BEToBigint, readLogOffset, readLogArrival, readLogLength, logBatchSize, batchIdentity, BatchView,
  BATCH_STRIDE, BATCH_KEY_START, BATCH_KEY_LENGTH, BATCH_DATA_START, BATCH_DATA_LENGTH, BATCH_FLAGS, BATCH_HASH_KEY_AT, KEY_VALID_UTF8,
} from './native/index.js'
export type { Addon, BatchIdentity, BatchScan, Codec, DecodedBatch, DecodedRecord, LogScan } from './native/index.js'
export { SerialLink, systemBinding, openError } from './serial/index.js'
export type { SerialLinkOptions, LinkState, LinkStats, LossReason, SerialBinding, SerialPortBinding, SerialOpenOptions } from './serial/index.js'
export { every, manualClock, runningTime, systemClock } from './clock.js'
export type { Clock, ManualClock } from './clock.js'
export {
  Camera, ffmpegArgs, validateCameraInput,
  Mp4Splitter, parseInit, parseFragment, isSyncSample, ntpToUnixMs, DEFAULT_MAX_UNIT_BYTES, Mp4Error, Mp4Problem, CameraError, CameraProblem,
} from './video/index.js'
export type {
  CameraOptions, CameraEvents, CameraRestart, RestartReason, SpawnProcess,
  InitInfo, FragmentInfo, VideoTrack, Mp4Unit, Mp4SplitterOptions, CameraInput, CameraSession, CapturedFragment, CameraStats, CameraState,
} from './video/index.js'
