/**
 * The console's streams page (`/console/streams`): each data stream with its status, retention and
 * encryption, a picture of its shards' hash-key ranges (open shards on top, the closed parents of
 * splits and merges below them, each as wide as its range), and its incoming records per second over
 * the last hour (a small chart from the relay's ring of ten-second steps). Fetched again when the
 * relay pushes a step (server-sent events), not polled.
 *
 * The page's state is on `window.streamsPage` (`streams`: as last fetched; `updates`: pushes seen).
 */
import { CONSOLE_API_JS, consolePage } from './assets.js'

export const STREAMS_HTML = `${consolePage('streams', 'Streams')}
  <span id="summary" role="status"></span>
</header>
<main>
  <section id="tail" hidden aria-label="live tail">
    <h2>Live tail of <span id="tail-stream"></span></h2>
    <label><input id="tail-hex" type="checkbox"> data as hex</label>
    <button id="tail-stop" type="button">Stop</button>
    <span id="tail-count" role="status"></span>
    <ol id="tail-records"></ol>
  </section>
  <div id="streams"></div>
  <p id="error" role="alert"></p>
</main>
<script src="/console/assets/streams.js"></script>
</body></html>
`

export const STREAMS_CSS = `
.stream { margin: 0 0 20px; padding: 10px 14px; border: 1px solid #333; border-radius: 6px; }
.stream h2 { font-size: 15px; margin: 0 0 6px; }
.stream .facts { color: #bbb; font-size: 13px; margin: 0 0 8px; font-variant-numeric: tabular-nums; }
.shards { position: relative; height: 44px; margin: 4px 0 10px; }
.shard { position: absolute; height: 20px; box-sizing: border-box; border: 1px solid #0d1a12; background: #2f7d4a; color: #eafff0; font-size: 11px; overflow: hidden; white-space: nowrap; padding: 2px 4px; }
.shard.closed { top: 23px; background: #555; color: #eee; }
.chart { width: 100%; max-width: 720px; height: 60px; display: block; }
.chart polyline { fill: none; stroke: #6cf; stroke-width: 1.5; }
.chart line { stroke: #444; }
#tail { margin: 0 0 16px; padding: 8px 12px; border: 1px solid #335; }
#tail h2 { font-size: 15px; margin: 0 0 6px; }
#tail-records { list-style: none; padding: 0; margin: 8px 0 0; max-height: 320px; overflow-y: auto; font: 12px ui-monospace, monospace; }
#tail-records li { padding: 2px 0; border-bottom: 1px solid #2a2a2a; white-space: pre-wrap; word-break: break-all; }
#tail-records .meta { color: #9ab; margin-right: 8px; }
@media (prefers-color-scheme: light) {
  #tail { border-color: #99b; }
  #tail-records li { border-bottom-color: #eee; }
  #tail-records .meta { color: #335; }
  .stream { border-color: #ddd; }
  .stream .facts { color: #444; }
  .shard.closed { background: #595959; color: #fff; }
  .chart polyline { stroke: #0a5ca8; }
  .chart line { stroke: #ccc; }
}
`

export const STREAMS_JS = `'use strict';
(function () {
  var $ = function (id) { return document.getElementById(id); };
  var state = window.streamsPage = { streams: [], updates: 0 };
  var SVG = 'http://www.w3.org/2000/svg';

${CONSOLE_API_JS}
  function el(tag, cls, text) { var e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; }
  function rate(n) { return n >= 1000 ? (n / 1000).toFixed(1) + 'k' : n.toFixed(n < 10 ? 1 : 0); }

  function chart(series) {
    var svg = document.createElementNS(SVG, 'svg');
    svg.setAttribute('class', 'chart');
    svg.setAttribute('viewBox', '0 0 360 60');
    svg.setAttribute('preserveAspectRatio', 'none');
    svg.setAttribute('role', 'img');
    var values = series.recordsPerSecond;
    var max = Math.max.apply(null, values.concat([1]));
    var last = values.length ? values[values.length - 1] : 0;
    svg.setAttribute('aria-label', 'records per second over the last hour; now ' + rate(last) + ', at most ' + rate(max));
    var base = document.createElementNS(SVG, 'line');
    base.setAttribute('x1', '0'); base.setAttribute('x2', '360'); base.setAttribute('y1', '59'); base.setAttribute('y2', '59');
    svg.appendChild(base);
    var line = document.createElementNS(SVG, 'polyline');
    var offset = 360 - values.length;
    line.setAttribute('points', values.map(function (v, i) { return (offset + i) + ',' + (58 - (v / max) * 54).toFixed(1); }).join(' '));
    svg.appendChild(line);
    return svg;
  }

  function render() {
    var root = $('streams');
    var out = document.createDocumentFragment();
    state.streams.forEach(function (s) {
      var box = el('section', 'stream');
      box.dataset.stream = s.name;
      box.appendChild(el('h2', '', s.name));
      var tailButton = el('button', '', 'Tail');
      tailButton.type = 'button';
      tailButton.setAttribute('aria-label', 'live tail of ' + s.name);
      tailButton.addEventListener('click', function () { startTail(s.name); });
      box.appendChild(tailButton);
      var open = s.shards.filter(function (sh) { return sh.open; });
      var rates = s.incoming.recordsPerSecond;
      box.appendChild(el('p', 'facts', s.status + ' · ' + s.mode + ' · ' + open.length + (open.length === 1 ? ' open shard of ' : ' open shards of ') + s.shards.length + ' · retention ' + s.retentionHours + ' h · ' +
        (s.encrypted ? 'encrypted' : 'not encrypted') + ' · now ' + rate(rates.length ? rates[rates.length - 1] : 0) + ' records/s'));
      var shards = el('div', 'shards');
      shards.setAttribute('role', 'list');
      shards.setAttribute('aria-label', 'shards by hash-key range');
      s.shards.forEach(function (sh) {
        var d = el('div', 'shard' + (sh.open ? '' : ' closed'), sh.shardId.replace('shardId-', ''));
        d.setAttribute('role', 'listitem');
        d.dataset.shard = sh.shardId;
        d.style.left = (sh.from * 100).toFixed(4) + '%';
        d.style.width = ((sh.to - sh.from) * 100).toFixed(4) + '%';
        d.title = sh.shardId + (sh.open ? ' (open)' : ' (closed)') + ', ' + sh.records + ' records' + (sh.parent ? ', from ' + sh.parent + (sh.adjacentParent ? ' and ' + sh.adjacentParent : '') : '');
        shards.appendChild(d);
      });
      box.appendChild(shards);
      box.appendChild(chart(s.incoming));
      out.appendChild(box);
    });
    root.replaceChildren(out);
    $('summary').textContent = state.streams.length + (state.streams.length === 1 ? ' stream' : ' streams');
  }

  // The live tail: one stream at a time, the newest record first, at most 200 kept on the page.
  var tail = state.tail = { source: null, stream: null, records: [] };
  function hex(bytes) { var out = []; for (var i = 0; i < bytes.length; i++) out.push((bytes.charCodeAt(i) < 16 ? '0' : '') + bytes.charCodeAt(i).toString(16)); return out.join(' '); }
  function shown(r) {
    var raw = atob(r.data);
    if ($('tail-hex').checked) return hex(raw);
    try { return new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(raw, function (c) { return c.charCodeAt(0); })); } catch (e) { return hex(raw); }
  }
  function drawTail() {
    var list = document.createDocumentFragment();
    tail.records.forEach(function (r) {
      var li = el('li');
      if (r.skipped) { li.textContent = r.skipped + ' records skipped in ' + r.shardId + ' (the tail keeps up with the newest)'; list.appendChild(li); return; }
      li.appendChild(el('span', 'meta', new Date(r.arrivalMs).toISOString().slice(11, 23) + ' ' + r.shardId.replace('shardId-', '') + ' #' + r.offset + ' ' + r.partitionKey + ' (' + r.bytes + ' B)'));
      li.appendChild(document.createTextNode(shown(r)));
      list.appendChild(li);
    });
    $('tail-records').replaceChildren(list);
    $('tail-count').textContent = tail.seen + ' records since the tail began';
  }
  function stopTail() { if (tail.source) tail.source.close(); tail.source = null; $('tail').hidden = true; }
  function startTail(name) {
    stopTail();
    tail.stream = name; tail.records = []; tail.seen = 0;
    $('tail-stream').textContent = name;
    $('tail').hidden = false;
    drawTail();
    tail.source = new EventSource('/console/api/tail?stream=' + encodeURIComponent(name));
    tail.source.addEventListener('record', function (e) {
      tail.records.unshift(JSON.parse(e.data)); tail.seen++;
      if (tail.records.length > 200) tail.records.length = 200;
      drawTail();
    });
    tail.source.addEventListener('skipped', function (e) { var j = JSON.parse(e.data); tail.records.unshift({ skipped: j.records, shardId: j.shardId }); drawTail(); });
  }
  $('tail-stop').addEventListener('click', stopTail);
  $('tail-hex').addEventListener('change', drawTail);

  var loading = null, again = false;
  function load() {
    if (loading) { again = true; return; }
    loading = api('streams-overview').then(function (j) { state.streams = j.streams; $('error').textContent = ''; render(); },
      function (err) { $('error').textContent = 'could not load the streams: ' + err.message; }).then(function () {
      loading = null;
      if (again) { again = false; load(); }
    });
  }
  var events = new EventSource('/console/api/events');
  events.addEventListener('streams', function () { state.updates++; load(); });
  events.addEventListener('open', load);
  load();
})();
`
