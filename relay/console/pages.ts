/**
 * The console's pages: plain HTML, each loading one script built from client/ (relay/console/build.ts)
 * and the shared style sheet. No inline script or style: the pages' Content-Security-Policy allows only
 * 'self'. The pages follow the system's light or dark setting, except the video player, which stays dark.
 */

export type PageName = 'Devices' | 'Streams' | 'Cameras' | 'Delivery'
const NAV: PageName[] = ['Devices', 'Streams', 'Cameras', 'Delivery']

interface PageOptions {
  title: string
  /** The navigation entry marked as this page. */
  current: PageName
  /** What the header holds after the title and navigation. */
  header: string
  main: string
  /** Scripts, in order, from /console/assets/. */
  scripts: string[]
  /** `themed`: light or dark as the system is set; `dark`: always dark (video). */
  theme?: 'themed' | 'dark'
}

function page(o: PageOptions): string {
  const link = (name: PageName) => `<a href="/console/${name.toLowerCase()}"${name === o.current ? ' aria-current="page"' : ''}>${name}</a>`
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tributary · ${o.title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/console/assets/console.css"></head>
<body class="${o.theme ?? 'themed'}">
<header>
  <h1>${o.title}</h1>
  <nav aria-label="console">${NAV.map(link).join(' ')}</nav>
${o.header}
  <button id="logout" type="button">Sign out</button>
</header>
<main>
${o.main}
</main>
${o.scripts.map((s) => `<script src="/console/assets/${s}"></script>`).join('\n')}
</body></html>
`
}

export const LOGIN_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tributary · sign in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/console/assets/console.css"></head>
<body class="themed login">
<main>
<form id="login">
  <h1>Tributary console</h1>
  <p>Sign in with the relay's admin token (the file <code>admin.token</code> in its data directory).</p>
  <label for="token">Admin token</label>
  <input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
  <button type="submit">Sign in</button>
  <p id="login-error" role="alert"></p>
</form>
</main>
<script src="/console/assets/login.js"></script>
</body></html>
`

export const DEVICES_HTML = page({
  title: 'Devices', current: 'Devices', scripts: ['devices.js'],
  header: `  <label>Filter <input id="filter" type="search" placeholder="device, state, sensor"></label>
  <span id="summary" role="status"></span>
  <form id="add-device"><label>New device <input id="new-id" required maxlength="128" placeholder="pump-station-8"></label> <button type="submit">Add</button></form>`,
  main: `  <section id="secret" hidden aria-live="polite">
    <p>The secret of <strong id="secret-device"></strong>, shown this once (the relay keeps only its hash):
    <code id="secret-value"></code> <button id="secret-done" type="button">Done</button></p>
  </section>
  <table id="devices">
    <thead><tr>
      <th scope="col" data-key="id" aria-sort="ascending"><button type="button">Device</button></th>
      <th scope="col" data-key="online"><button type="button">State</button></th>
      <th scope="col" data-key="lastSeenMs"><button type="button">Last seen</button></th>
      <th scope="col" data-key="backlog" class="num"><button type="button">Backlog</button></th>
      <th scope="col" data-key="oldestAgeMs" class="num"><button type="button">Oldest</button></th>
      <th scope="col" data-key="dropped" class="num"><button type="button">Dropped</button></th>
      <th scope="col" data-key="deadLetters" class="num"><button type="button">Dead letters</button></th>
      <th scope="col" data-key="link"><button type="button">Link</button></th>
      <th scope="col" data-key="version"><button type="button">Version</button></th>
      <th scope="col">Sensors and cameras</th>
      <th scope="col">Actions</th>
    </tr></thead>
    <tbody></tbody>
  </table>
  <p id="error" role="alert"></p>`,
})

export const STREAMS_HTML = page({
  title: 'Streams', current: 'Streams', scripts: ['streams.js'],
  header: '  <span id="summary" role="status"></span>',
  main: `  <section id="tail" hidden aria-label="live tail">
    <h2>Live tail of <span id="tail-stream"></span></h2>
    <label><input id="tail-hex" type="checkbox"> data as hex</label>
    <button id="tail-stop" type="button">Stop</button>
    <span id="tail-count" role="status"></span>
    <ol id="tail-records"></ol>
  </section>
  <div id="streams"></div>
  <p id="error" role="alert"></p>`,
})

export const CAMERAS_HTML = page({
  title: 'Cameras', current: 'Cameras', scripts: ['cameras.js'],
  header: '  <span id="summary" role="status"></span>',
  main: `  <div id="cameras" class="tiles"></div>
  <p id="error" role="alert"></p>`,
})

export const DELIVERY_HTML = page({
  title: 'Delivery streams', current: 'Delivery', scripts: ['delivery.js'],
  header: '  <span id="summary" role="status"></span>',
  main: `  <table id="deliveries">
    <thead><tr>
      <th scope="col">Delivery stream</th>
      <th scope="col">Status</th>
      <th scope="col">Reads</th>
      <th scope="col">Delivers to</th>
      <th scope="col" class="num">Freshness</th>
      <th scope="col" class="num">Backlog</th>
      <th scope="col" class="num">Delivered</th>
      <th scope="col">Last delivery</th>
      <th scope="col">Failures</th>
    </tr></thead>
    <tbody></tbody>
  </table>
  <p id="empty" class="facts" hidden>No delivery streams on this relay (the Firehose API or the relay's delivery file makes them).</p>
  <p id="error" role="alert"></p>`,
})

export const VIDEO_HTML = page({
  title: 'Video', current: 'Cameras', theme: 'dark', scripts: ['hls.min.js', 'video.js'],
  header: `  <label>Stream <select id="stream"></select></label>
  <label>Timeline <select id="range">
    <option value="3600">last hour</option><option value="21600">last 6 hours</option><option value="86400">last 24 hours</option>
  </select></label>
  <button id="live" type="button">Live</button>
  <label>From <input id="from" type="datetime-local" step="1"></label>
  <button id="play-from" type="button">Play from</button>`,
  main: `  <video id="video" controls muted playsinline></video>
  <div id="status" role="status"></div>
  <div id="timeline" title="click to play from that time"><div id="playhead"></div></div>
  <div id="timeline-labels"><span id="tl-from"></span><span id="tl-to"></span></div>
  <div id="thumbs" tabindex="0" role="region" aria-label="stills of the recorded video: choose one to play from its time"></div>`,
})
