/**
 * The console's devices page (`/console/devices`): every device with online or offline (from its
 * retained status and MQTT will), when it was last heard from, its backlog and oldest record, drops,
 * dead letters, link state, serial sensors and cameras. Sortable by any column, filtered by a text
 * box; updated when the relay pushes a change (server-sent events on `/console/api/events`), not
 * polled. Plain HTML and browser JavaScript with no inline script, as the video page.
 *
 * The page's state is on `window.devicesPage` (`rows`: the devices as last fetched; `updates`: how
 * many pushes arrived), which tests read.
 */
import { CONSOLE_API_JS, consolePage } from './assets.js'

export const DEVICES_HTML = `${consolePage('devices', 'Devices')}
  <label>Filter <input id="filter" type="search" placeholder="device, state, sensor"></label>
  <span id="summary" role="status"></span>
  <form id="add-device"><label>New device <input id="new-id" required maxlength="128" placeholder="pump-station-8"></label> <button type="submit">Add</button></form>
  <button id="logout" type="button">Sign out</button>
</header>
<main>
  <section id="secret" hidden aria-live="polite">
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
  <p id="error" role="alert"></p>
</main>
<script src="/console/assets/devices.js"></script>
</body></html>
`

export const DEVICES_CSS = `
nav a { color: #9cf; margin-right: 8px; }
nav a[aria-current] { color: #fff; font-weight: 600; text-decoration: none; }
table#devices { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
#devices th, #devices td { text-align: left; padding: 6px 10px; border-bottom: 1px solid #333; white-space: nowrap; }
#devices th.num, #devices td.num { text-align: right; }
#devices th button { font: inherit; font-weight: 600; color: inherit; background: none; border: 0; padding: 0; cursor: pointer; }
#devices th[aria-sort="ascending"] button::after { content: " ▲"; }
#devices th[aria-sort="descending"] button::after { content: " ▼"; }
.state { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; }
.state.online { background: #1f5a33; color: #d6f5df; }
.state.offline { background: #6b2424; color: #fbdada; }
.state.unknown { background: #444; color: #ddd; }
.chip { display: inline-block; margin-right: 6px; font-size: 12px; color: #bbb; }
.chip.bad { color: #f99; }
#error { color: #e77; }
#add-device { display: inline-flex; gap: 6px; align-items: center; }
#secret { margin: 0 0 12px; padding: 8px 12px; border: 1px solid #7a6a20; background: #2a2610; }
#secret code { font-size: 15px; user-select: all; }
#devices td button { margin-right: 4px; }
/* The devices and sign-in pages follow the system's light or dark setting (the video page stays dark). */
@media (prefers-color-scheme: light) {
  body.devices, body.login { background: #fafafa; color: #222; }
  body.devices header { background: #eee; }
  body.devices nav a { color: #0645ad; }
  body.devices nav a[aria-current] { color: #000; }
  #devices th, #devices td { border-bottom-color: #ddd; }
  #secret { background: #fff8d6; border-color: #c8a800; }
  .chip { color: #555; }
  .chip.bad { color: #b00; }
}
`

export const DEVICES_JS = `'use strict';
(function () {
  var $ = function (id) { return document.getElementById(id); };
  var state = window.devicesPage = { rows: [], updates: 0, sort: { key: 'id', dir: 1 } };

${CONSOLE_API_JS}

  function ago(ms) {
    if (ms === null || ms === undefined) return '–';
    var s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return s + ' s';
    if (s < 3600) return Math.floor(s / 60) + ' min';
    if (s < 86400) return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min';
    return Math.floor(s / 86400) + ' d';
  }
  function count(n) { return n === null || n === undefined ? '–' : n.toLocaleString(); }
  function stateOf(d) { return d.online === true ? 'online' : d.online === false ? 'offline' : 'unknown'; }
  function dropped(d) { var n = 0; for (var k in d.drops) n += d.drops[k]; return n; }
  function cell(row, text, cls, title) {
    var td = document.createElement('td');
    td.textContent = text;
    if (cls) td.className = cls;
    if (title) td.title = title;
    row.appendChild(td);
    return td;
  }

  function render() {
    var now = state.now || Date.now();
    var filter = $('filter').value.trim().toLowerCase();
    var key = state.sort.key, dir = state.sort.dir;
    var rows = state.rows.map(function (d) { return Object.assign({ dropped: dropped(d) }, d); }).filter(function (d) {
      if (!filter) return true;
      var text = [d.id, stateOf(d), d.link || ''].concat(d.serial.map(function (s) { return s.name + ' ' + s.state; }), d.cameras.map(function (c) { return c.name + ' ' + c.state; })).join(' ').toLowerCase();
      return text.indexOf(filter) >= 0;
    });
    rows.sort(function (a, b) {
      var x = a[key], y = b[key];
      if (x === y) return a.id < b.id ? -1 : 1;
      if (x === null || x === undefined) return 1;
      if (y === null || y === undefined) return -1;
      return (x < y ? -1 : 1) * dir;
    });
    var body = document.createElement('tbody');
    rows.forEach(function (d) {
      var tr = document.createElement('tr');
      tr.dataset.device = d.id;
      var th = document.createElement('th');
      th.scope = 'row';
      th.textContent = d.id + (d.registered ? '' : ' (unregistered)');
      tr.appendChild(th);
      var st = cell(tr, '');
      var badge = document.createElement('span');
      badge.className = 'state ' + stateOf(d);
      badge.textContent = stateOf(d);
      st.appendChild(badge);
      cell(tr, d.lastSeenMs === null ? 'never' : ago(now - d.lastSeenMs) + ' ago', '', d.lastSeenMs === null ? '' : new Date(d.lastSeenMs).toISOString());
      cell(tr, count(d.backlog), 'num');
      cell(tr, d.oldestAgeMs === null ? '–' : ago(d.oldestAgeMs), 'num');
      cell(tr, count(d.dropped), 'num', Object.keys(d.drops).map(function (k) { return k + ': ' + d.drops[k]; }).join(', '));
      cell(tr, count(d.deadLetters), 'num');
      cell(tr, d.link || '–');
      cell(tr, d.version || '–');
      var parts = cell(tr, '');
      d.serial.concat(d.cameras).forEach(function (p) {
        var chip = document.createElement('span');
        chip.className = 'chip' + (p.state === 'open' || p.state === 'capturing' || p.state === 'running' ? '' : ' bad');
        chip.textContent = p.name + ': ' + p.state;
        parts.appendChild(chip);
      });
      d.alarms.forEach(function (a) {
        var chip = document.createElement('span');
        chip.className = 'chip bad';
        chip.textContent = a;
        parts.appendChild(chip);
      });
      var actions = cell(tr, '');
      if (d.registered) {
        actions.appendChild(button('Rotate', 'rotate the secret of ' + d.id, function () {
          if (!confirm('Rotate the secret of ' + d.id + '? The old one stops working at once.')) return;
          api('devices/rotate', { id: d.id }).then(function (j) { showSecret(j.id, j.secret); load(); }, fail);
        }));
        actions.appendChild(button('Remove', 'remove ' + d.id, function () {
          if (!confirm('Remove ' + d.id + '? It is disconnected and can no longer connect.')) return;
          api('devices/remove', { id: d.id }).then(load, fail);
        }));
      }
      body.appendChild(tr);
    });
    var table = $('devices');
    table.replaceChild(body, table.tBodies[0]);
    var online = state.rows.filter(function (d) { return d.online === true; }).length;
    $('summary').textContent = state.rows.length + (state.rows.length === 1 ? ' device, ' : ' devices, ') + online + ' online' + (rows.length !== state.rows.length ? ', ' + rows.length + ' shown' : '');
  }

  function button(text, label, onClick) {
    var b = document.createElement('button');
    b.type = 'button';
    b.textContent = text;
    b.setAttribute('aria-label', label);
    b.addEventListener('click', onClick);
    return b;
  }
  function fail(err) { $('error').textContent = err.message; }
  function showSecret(id, secret) {
    $('secret-device').textContent = id;
    $('secret-value').textContent = secret;
    $('secret').hidden = false;
  }
  $('secret-done').addEventListener('click', function () { $('secret-value').textContent = ''; $('secret').hidden = true; });
  $('add-device').addEventListener('submit', function (e) {
    e.preventDefault();
    var id = $('new-id').value.trim();
    api('devices/add', { id: id }).then(function (j) { $('new-id').value = ''; $('error').textContent = ''; showSecret(j.id, j.secret); load(); }, fail);
  });

  var loading = null, again = false;
  function load() {
    if (loading) { again = true; return; }
    loading = api('devices').then(function (j) {
      state.rows = j.devices; state.now = j.now; state.loadedAt = Date.now();
      $('error').textContent = '';
      render();
    }, function (err) { $('error').textContent = 'could not load the devices: ' + err.message; }).then(function () {
      loading = null;
      if (again) { again = false; load(); }
    });
  }

  document.querySelectorAll('#devices th[data-key] button').forEach(function (b) {
    b.addEventListener('click', function () {
      var th = b.parentNode, key = th.dataset.key;
      state.sort = { key: key, dir: state.sort.key === key ? -state.sort.dir : 1 };
      document.querySelectorAll('#devices th[data-key]').forEach(function (h) { h.removeAttribute('aria-sort'); });
      th.setAttribute('aria-sort', state.sort.dir === 1 ? 'ascending' : 'descending');
      render();
    });
  });
  $('filter').addEventListener('input', render);
  $('logout').addEventListener('click', function () {
    fetch('/console/logout', { method: 'POST', credentials: 'same-origin', headers: { 'x-tributary-console': '1' } }).then(function () { location.reload(); });
  });

  // Pushed: the relay says which device changed; the list is fetched again (coalesced while a fetch runs).
  var events = new EventSource('/console/api/events');
  events.addEventListener('device', function () { state.updates++; load(); });
  events.addEventListener('open', load);
  // "Last seen" ages between pushes.
  setInterval(function () { if (state.loadedAt) { state.now += Date.now() - state.loadedAt; state.loadedAt = Date.now(); render(); } }, 5000);
  load();
})();
`
