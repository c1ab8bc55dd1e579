/** The relay's web console (`/console/…`): what the rest of the relay may import. */
export { ConsoleServer, CONSOLE_PREFIX, CSRF_HEADER, type ConsoleOptions } from './server.js'
export { streamViews, type OverviewSources } from './overview.js'
