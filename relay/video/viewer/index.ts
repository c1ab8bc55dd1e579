/** The video console (`/console/video`): what the rest of the relay may import. */
export { VideoConsole, CONSOLE_PREFIX, CSRF_HEADER, type ConsoleOptions } from './console.js'
export { ConsoleCookies, COOKIE_NAME, COOKIE_TTL_MS } from './cookie.js'
export { timelineOf, GAP_TOLERANCE_MS, type Timeline } from './timeline.js'
