/**
 * The console's static files, as strings so that the built relay (dist/) carries them: the login page
 * and its script, the viewer page, its script and style. Plain HTML and browser JavaScript with no
 * inline script (the pages' Content-Security-Policy allows only 'self').
 *
 * The viewer's state is on `window.viewer` (errors hls.js and the video element reported, each with
 * the fragment it names and the buffered ranges and playhead at that moment; the mode,
 * `latencyMs()`: now minus the playhead's EXT-X-PROGRAM-DATE-TIME), which the soak test reads.
 */

/**
 * Every console page's call to its API: a JSON POST with the CSRF header; signed out (401), the page
 * reloads into the sign-in form; an error answer throws its message (and status).
 */
export const CONSOLE_API_JS = `  function api(name, body) {
    return fetch('/console/api/' + name, {
      method: 'POST', credentials: 'same-origin',
      headers: { 'content-type': 'application/json', 'x-tributary-console': '1' },
      body: JSON.stringify(body || {})
    }).then(function (r) {
      if (r.status === 401) { location.reload(); throw new Error('signed out'); }
      return r.json().then(function (j) {
        if (!r.ok) { var e = new Error(j.message || j.Message || ('HTTP ' + r.status)); e.status = r.status; throw e; }
        return j;
      });
    });
  }`

/** The head and top of a console page with the navigation between its pages (`current`: this page's). */
export function consolePage(title: string, current: 'Devices' | 'Streams'): string {
  const link = (name: string) => `<a href="/console/${name.toLowerCase()}"${name === current ? ' aria-current="page"' : ''}>${name}</a>`
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tributary · ${title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/console/assets/viewer.css"></head>
<body class="devices">
<header>
  <h1>${current}</h1>
  <nav>${['Devices', 'Streams', 'Video'].map(link).join(' ')}</nav>`
}

export const LOGIN_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tributary · sign in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/console/assets/viewer.css"></head>
<body class="login">
<form id="login">
  <h1>Tributary console</h1>
  <p>Sign in with the relay's admin token (the file <code>admin.token</code> in its data directory).</p>
  <label for="token">Admin token</label>
  <input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
  <button type="submit">Sign in</button>
  <p id="login-error" role="alert"></p>
</form>
<script src="/console/assets/login.js"></script>
</body></html>
`

export const LOGIN_JS = `'use strict';
document.getElementById('login').addEventListener('submit', function (e) {
  e.preventDefault();
  var error = document.getElementById('login-error');
  error.textContent = '';
  fetch('/console/login', {
    method: 'POST', credentials: 'same-origin',
    headers: { 'content-type': 'application/json', 'x-tributary-console': '1' },
    body: JSON.stringify({ token: document.getElementById('token').value })
  }).then(function (r) {
    if (r.status === 204) { location.reload(); return; }
    return r.json().then(function (j) { error.textContent = j.message || ('sign-in failed: HTTP ' + r.status); });
  }, function (err) { error.textContent = 'sign-in failed: ' + err.message; });
});
`

export const VIEWER_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tributary · video</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/console/assets/viewer.css"></head>
<body>
<header>
  <h1>Video</h1>
  <label>Stream <select id="stream"></select></label>
  <label>Timeline <select id="range">
    <option value="3600">last hour</option><option value="21600">last 6 hours</option><option value="86400">last 24 hours</option>
  </select></label>
  <button id="live" type="button">Live</button>
  <label>From <input id="from" type="datetime-local" step="1"></label>
  <button id="play-from" type="button">Play from</button>
  <button id="logout" type="button">Sign out</button>
</header>
<main>
  <video id="video" controls muted playsinline></video>
  <div id="status" role="status"></div>
  <div id="timeline" title="click to play from that time"><div id="playhead"></div></div>
  <div id="timeline-labels"><span id="tl-from"></span><span id="tl-to"></span></div>
  <div id="thumbs"></div>
</main>
<script src="/console/assets/hls.min.js"></script>
<script src="/console/assets/viewer.js"></script>
</body></html>
`

export const VIEWER_CSS = `body { font: 14px system-ui, sans-serif; margin: 0; background: #111; color: #ddd; }
header { display: flex; flex-wrap: wrap; gap: 12px; align-items: center; padding: 8px 16px; background: #1c1c1c; }
header h1 { font-size: 16px; margin: 0 12px 0 0; }
main { padding: 12px 16px; }
video { width: 100%; max-width: 960px; background: #000; display: block; }
#status { min-height: 1.4em; margin: 6px 0; color: #9c9; }
#status.error { color: #e77; }
#timeline { position: relative; height: 28px; max-width: 960px; background: #3a2020; cursor: pointer; margin-top: 8px; }
#timeline .span { position: absolute; top: 0; bottom: 0; background: #2f7d4a; }
#timeline .gap { position: absolute; top: 0; bottom: 0; background: repeating-linear-gradient(45deg, #5a2a2a, #5a2a2a 4px, #3a2020 4px, #3a2020 8px); }
#playhead { position: absolute; top: -3px; bottom: -3px; width: 2px; background: #fff; display: none; z-index: 1; }
#timeline-labels { display: flex; justify-content: space-between; max-width: 960px; font-size: 12px; color: #999; }
#thumbs { display: flex; gap: 4px; overflow-x: auto; max-width: 960px; margin-top: 8px; }
#thumbs figure { margin: 0; cursor: pointer; }
#thumbs img { display: block; height: 72px; }
#thumbs figcaption { font-size: 11px; color: #999; }
body.login { display: flex; justify-content: center; padding-top: 10vh; }
form#login { display: flex; flex-direction: column; gap: 8px; width: 360px; }
#login-error { color: #e77; min-height: 1.4em; }
`

export const VIEWER_JS = `'use strict';
(function () {
  var $ = function (id) { return document.getElementById(id); };
  var video = $('video');
  var state = window.viewer = {
    errors: [], mode: null, stream: null, hls: null, timeline: null, images: 0, fragmentsLoaded: 0,
    playingDateMs: function () { var d = state.hls && state.hls.playingDate; return d ? d.getTime() : null; },
    latencyMs: function () { var p = state.playingDateMs(); return p === null ? null : Date.now() - p; }
  };

  function status(text, isError) { $('status').textContent = text; $('status').className = isError ? 'error' : ''; }

${CONSOLE_API_JS}

  function stopPlayer() {
    if (state.hls) { state.hls.destroy(); state.hls = null; }
    video.removeAttribute('src');
  }

  function play(mode, fromMs) {
    var name = state.stream;
    if (!name) return;
    // Producer timestamps (the camera's clock), LIVE too: AWS's default for LIVE is the server's arrival
    // time, which puts a discontinuity between every two fragments and hides the camera-to-screen delay.
    var req = { StreamName: name, PlaybackMode: mode, DisplayFragmentTimestamp: 'ALWAYS', Expires: 3600, HLSFragmentSelector: { FragmentSelectorType: 'PRODUCER_TIMESTAMP' } };
    if (mode === 'ON_DEMAND') {
      var end = Math.min(fromMs + 6 * 3600 * 1000, Date.now() + 60 * 1000);
      req.HLSFragmentSelector = { FragmentSelectorType: 'PRODUCER_TIMESTAMP', TimestampRange: { StartTimestamp: fromMs / 1000, EndTimestamp: end / 1000 } };
      req.MaxMediaPlaylistFragmentResults = 5000;
    }
    status('asking for an HLS session (' + mode + ')...');
    return api('hls', req).then(function (r) {
      stopPlayer();
      state.mode = mode;
      var live = mode === 'LIVE';
      var hls = new Hls({
        lowLatencyMode: live, liveSyncDurationCount: 1, liveMaxLatencyDurationCount: 3, maxLiveSyncPlaybackRate: 1.5,
        backBufferLength: 30, enableWorker: true
      });
      state.hls = hls;
      hls.on(Hls.Events.ERROR, function (_e, data) {
        var err = { type: data.type, details: data.details, fatal: data.fatal, at: Date.now() };
        if (data.frag) err.fragment = { sn: data.frag.sn, start: data.frag.start, duration: data.frag.duration };
        var b = video.buffered, ranges = [];
        for (var i = 0; i < b.length; i++) ranges.push([b.start(i), b.end(i)]);
        err.buffered = ranges; err.currentTime = video.currentTime;
        state.errors.push(err);
        if (data.fatal) status('playback error: ' + data.type + ' / ' + data.details, true);
      });
      hls.on(Hls.Events.FRAG_BUFFERED, function () { state.fragmentsLoaded++; });
      hls.loadSource(r.HLSStreamingSessionURL);
      hls.attachMedia(video);
      hls.on(Hls.Events.MANIFEST_PARSED, function () {
        var p = video.play();
        if (p && p.catch) p.catch(function (err) { state.errors.push({ type: 'play', details: err.message, fatal: false, at: Date.now() }); });
      });
      status(live ? 'playing LIVE' : 'playing from ' + new Date(fromMs).toLocaleString());
    }, function (err) { status('cannot play ' + name + ': ' + err.message, true); });
  }

  video.addEventListener('error', function () {
    var e = video.error;
    state.errors.push({ type: 'media', details: e ? e.code + ' ' + e.message : 'unknown', fatal: true, at: Date.now() });
  });

  function timeRange() {
    var seconds = Number($('range').value);
    var to = Date.now();
    return { from: to - seconds * 1000, to: to };
  }

  function placeOn(el, startMs, endMs, range) {
    var w = range.to - range.from;
    el.style.left = (Math.max(0, startMs - range.from) / w * 100) + '%';
    el.style.width = (Math.max(0.1, (Math.min(endMs, range.to) - Math.max(startMs, range.from)) / w * 100)) + '%';
  }

  function drawTimeline() {
    var range = timeRange();
    return api('timeline', { StreamName: state.stream, StartTimestamp: range.from / 1000, EndTimestamp: range.to / 1000 }).then(function (t) {
      state.timeline = t;
      // Drawn from the first recorded video in the chosen range (a minute of video in an empty day stays visible).
      if (t.spans.length) range.from = Math.max(range.from, t.spans[0].startMs - Math.max(2000, (range.to - t.spans[0].startMs) / 50));
      var box = $('timeline');
      Array.prototype.slice.call(box.querySelectorAll('.span, .gap')).forEach(function (n) { n.remove(); });
      t.spans.forEach(function (s) {
        var d = document.createElement('div'); d.className = 'span';
        d.title = new Date(s.startMs).toLocaleString() + ' – ' + new Date(s.endMs).toLocaleString() + ' (' + s.fragments + ' fragments)';
        placeOn(d, s.startMs, s.endMs, range); box.appendChild(d);
      });
      t.gaps.forEach(function (g) {
        var d = document.createElement('div'); d.className = 'gap';
        d.title = 'gap: ' + new Date(g.startMs).toLocaleString() + ' – ' + new Date(g.endMs).toLocaleString();
        placeOn(d, g.startMs, g.endMs, range); box.appendChild(d);
      });
      $('tl-from').textContent = new Date(range.from).toLocaleString();
      $('tl-to').textContent = new Date(range.to).toLocaleString();
      state.range = range;
      return t;
    }, function (err) { status('timeline: ' + err.message, true); });
  }

  var thumbsGeneration = 0;
  // GetImages covers at most 300 s a call: the 5 minutes from a chosen time, or the last 5 recorded.
  function drawThumbs(fromMs) {
    var strip = $('thumbs');
    strip.textContent = '';
    var t = state.timeline;
    if (!t || !t.spans.length) return;
    var last = t.spans[t.spans.length - 1].endMs;
    var from = typeof fromMs === 'number' ? fromMs : Math.max(t.spans[0].startMs, last - 300 * 1000);
    var to = Math.min(from + 300 * 1000, Math.max(last, from + 1000));
    var interval = Math.max(200, Math.ceil((to - from) / 12));
    var shown = state.stream, generation = ++thumbsGeneration;
    api('images', {
      StreamName: shown, ImageSelectorType: 'PRODUCER_TIMESTAMP', StartTimestamp: from / 1000, EndTimestamp: to / 1000,
      SamplingInterval: interval, Format: 'JPEG', WidthPixels: 160, MaxResults: 12
    }).then(function (r) {
      if (shown !== state.stream || generation !== thumbsGeneration) return;
      (r.Images || []).forEach(function (img) {
        if (!img.ImageContent) return;
        var fig = document.createElement('figure');
        var el = document.createElement('img');
        el.src = 'data:image/jpeg;base64,' + img.ImageContent;
        var at = typeof img.TimeStamp === 'number' ? img.TimeStamp * 1000 : Date.parse(img.TimeStamp);
        var cap = document.createElement('figcaption'); cap.textContent = new Date(at).toLocaleTimeString();
        fig.appendChild(el); fig.appendChild(cap);
        fig.addEventListener('click', function () { play('ON_DEMAND', at); });
        strip.appendChild(fig);
        state.images++;
      });
    }, function () { /* GetImages unavailable (404) or nothing to show: the strip stays empty. */ });
  }

  function chooseStream(name) {
    state.stream = name;
    stopPlayer();
    return drawTimeline().then(function () { drawThumbs(); });
  }

  $('timeline').addEventListener('click', function (e) {
    if (!state.range) return;
    var box = $('timeline').getBoundingClientRect();
    var at = state.range.from + (e.clientX - box.left) / box.width * (state.range.to - state.range.from);
    play('ON_DEMAND', Math.round(at));
    drawThumbs(Math.round(at));
  });
  $('stream').addEventListener('change', function () { chooseStream($('stream').value); });
  $('range').addEventListener('change', function () { drawTimeline().then(function () { drawThumbs(); }); });
  $('live').addEventListener('click', function () { play('LIVE'); });
  $('play-from').addEventListener('click', function () {
    var v = $('from').value;
    if (v) play('ON_DEMAND', new Date(v).getTime());
  });
  $('logout').addEventListener('click', function () {
    fetch('/console/logout', { method: 'POST', credentials: 'same-origin', headers: { 'x-tributary-console': '1' } }).then(function () { location.reload(); });
  });

  // The playhead on the timeline, from the program date time of what plays.
  setInterval(function () {
    var p = state.playingDateMs(), r = state.range, el = $('playhead');
    if (p === null || !r || p < r.from || p > r.to) { el.style.display = 'none'; return; }
    el.style.display = 'block';
    el.style.left = ((p - r.from) / (r.to - r.from) * 100) + '%';
  }, 500);

  api('streams', {}).then(function (r) {
    var select = $('stream');
    (r.StreamInfoList || []).forEach(function (s) {
      var o = document.createElement('option'); o.value = s.StreamName; o.textContent = s.StreamName; select.appendChild(o);
    });
    state.streams = (r.StreamInfoList || []).map(function (s) { return s.StreamName; });
    var wanted = new URLSearchParams(location.search).get('stream');
    if (wanted && state.streams.indexOf(wanted) !== -1) select.value = wanted;
    if (select.value) return chooseStream(select.value);
    status('no video streams on this relay yet');
  }).then(function () {
    var q = new URLSearchParams(location.search);
    if (q.get('mode') === 'LIVE') play('LIVE');
    else if (q.get('from')) play('ON_DEMAND', Number(q.get('from')));
    state.ready = true;
  }, function (err) { status('listing streams: ' + err.message, true); state.ready = true; });

  // For a test or the browser's console: viewerPlay('LIVE') or viewerPlay('ON_DEMAND', ms).
  window.viewerPlay = play;
})();
`
